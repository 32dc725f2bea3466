"""megam.bus.failover: the comma list of broker URLs a service is given."""

import pytest

from megam.bus.failover import amqp_urls, redact


def test_a_single_url_is_a_list_of_one():
    assert amqp_urls("amqp://guest:guest@127.0.0.1:5672/") == ["amqp://guest:guest@127.0.0.1:5672/"]


def test_a_comma_list_keeps_its_order_and_ignores_blanks_and_spaces():
    assert amqp_urls(" amqp://a:1/ , ,amqps://b:2/v ") == ["amqp://a:1/", "amqps://b:2/v"]


@pytest.mark.parametrize("text", ["", " , ", "127.0.0.1:5672", "amqp://a/,http://b/"])
def test_anything_but_amqp_urls_is_refused_with_the_form_expected(text):
    with pytest.raises(ValueError, match="AMQP URL"):
        amqp_urls(text)


def test_passwords_are_redacted_in_every_url_of_a_list():
    assert redact("amqp://guest:s3cret@h1:5672/,amqp://bob:pw@h2/") == (
        "amqp://guest:****@h1:5672/,amqp://bob:****@h2/"
    )
