# What the 2014 gem assumed of the world it ran in, supplied by the harness (never by editing the
# gem). None of it changes what the gem sends: it only lets it load and reach a test's port.
require "logger"
require "excon"

# Debian's mixlib-log 3 calls #trace on the logger it is given; the gem's MonoLogger predates it.
class Logger
  alias_method :trace, :debug unless method_defined?(:trace)
  alias_method :trace?, :debug? unless method_defined?(:trace?)
end

# The builders call String#present? (nilavu, a Rails app, always had ActiveSupport loaded).
require "active_support/core_ext/object/blank"

# Plain http always goes to port 9000 (Megam::API#connection); the gateway under test listens on
# a free port, named by MEGAM_COMPAT_PORT. The host itself comes from $MEGAM_HOME/nilavu.yml.
module Compat
  module PlainHttpPort
    def new(url, params = {})
      super(url.sub(/:9000\z/, ":#{ENV.fetch('MEGAM_COMPAT_PORT')}"), params)
    end
  end
end
Excon.singleton_class.prepend(Compat::PlainHttpPort)
