# Drives the original megam_api gem (unmodified) through the calls a test asks for.
#
# Usage: ruby -I <gem>/lib driver.rb <results.json> < script.json
#
# The script is {"email", "api_key", "steps": [...]}; a step is one of
#   {"call": "<Megam::API method>", "args": [...]}            one Megam::API object per call
#   {"build": "make_node" | "delete_node", "data": {...},    the portal's builders, then what the
#    "group": "server", "action": "create" | "delete"}       portal did with their node hash:
#                                                             Megam::Node.create / Request.create
# Every step's outcome is written to <results.json> as a JSON array, in order. The gem prints to
# stdout itself (its colour trace of each path), so the results go to a file of their own.
require "json"
require_relative "shims"
require "megam_api"

module Compat
  module_function

  # A JSON-able picture of what the gem made of an answer: Megam classes by name, their fields.
  def describe(value)
    case value
    when Hash then value.to_h { |key, inner| [key.to_s, describe(inner)] }
    when Array then value.map { |inner| describe(inner) }
    when String, Numeric, true, false, nil then value
    when Enumerable then { "claz" => value.class.name, "items" => value.map { |i| describe(i) } }
    else described_object(value)
    end
  end

  # Fields of the client itself (ServerAPI's credentials) and lookup indexes are not the answer.
  NOT_FIELDS = /\A@(email|api_key|insert_after_idx|.*_by_name)\z/

  def described_object(value)
    fields = value.respond_to?(:for_json) ? value.for_json : {}
    fields = fields.is_a?(Hash) ? fields.transform_keys(&:to_s) : { "value" => fields }
    value.instance_variables.grep_v(NOT_FIELDS).each do |var|
      fields[var.to_s.delete("@")] ||= value.instance_variable_get(var)
    end
    { "claz" => value.class.name }.merge(describe(fields))
  end

  def answer(response)
    { "status" => response.status, "body" => describe(response.data[:body]) }
  end

  def refusal(error)
    body = error.response.body
    { "error" => error.class.name, "status" => error.response.status, "body" => describe(body) }
  end

  def call(script, step)
    api = Megam::API.new(email: script["email"], api_key: script["api_key"])
    answer(api.public_send(step["call"], *step.fetch("args", [])))
  end

  BUILDERS = { "make_node" => [Megam::MakeNode, Megam::Node],
               "delete_node" => [Megam::DeleteNode, Megam::Request] }.freeze

  def build(script, step)
    builder, sender = BUILDERS.fetch(step["build"])
    data = step["data"].to_h { |key, value| [key.to_sym, value] }
    built = builder.create(data, step["group"], step["action"], script["email"], script["api_key"])
    return { "built" => describe(built) } if built.is_a?(Megam::Error)

    { "built" => describe(built) }.merge(answer(sender.create(built, script["email"], script["api_key"])))
  end

  def run(script, step)
    step.key?("build") ? build(script, step) : call(script, step)
  rescue Megam::API::Errors::ErrorWithResponse => e
    refusal(e)
  rescue StandardError => e
    { "crash" => e.class.name, "message" => e.message, "at" => e.backtrace.first(3) }
  end
end

script = JSON.parse($stdin.read)
results = script["steps"].map { |step| Compat.run(script, step) }
File.write(ARGV.fetch(0), JSON.generate(results))
