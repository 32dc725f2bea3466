"""megam.secrets' mask: every form the project writes a secret in is masked, line by line too."""

from __future__ import annotations

import json

import orjson
from hypothesis import given
from hypothesis import strategies as st

from megam.secrets import MASK, Masker, mask, ruby_single_quoted_body, written_forms
from tests.hostile_secrets import GOOGLE_JSON, HOSTILE, found_in

secret_values = st.text(min_size=4, max_size=40).filter(lambda s: "*" not in s)


class TestEveryWrittenFormIsMasked:
    @given(secret=secret_values, before=st.text(max_size=20), after=st.text(max_size=20))
    def test_each_form_anywhere_in_a_line(self, secret: str, before: str, after: str) -> None:
        for form in written_forms(secret):
            masked = mask(before + form + after, [secret])
            assert all(f not in masked for f in written_forms(secret) if "\n" not in f)

    def test_the_ruby_escaped_form(self) -> None:
        secret = HOSTILE["backslashes"]
        line = f"knife[:aws_secret_access_key] = '{ruby_single_quoted_body(secret)}'"
        assert mask(line, [secret]) == f"knife[:aws_secret_access_key] = '{MASK}'"

    def test_the_json_escaped_forms(self) -> None:
        secret = HOSTILE["quotes"] + HOSTILE["unicode"]
        assert mask(orjson.dumps({"k": secret}).decode(), [secret]) == '{"k":"****"}'
        assert mask(json.dumps({"k": secret}), [secret]) == '{"k": "****"}'

    def test_a_secret_that_is_also_ordinary_output_is_masked_there_too(self) -> None:
        line = "Bootstrapping Chef on ec2-54-251-10-12"
        assert mask(line, [HOSTILE["substring_of_output"]]) == f"{MASK} Chef on ec2-54-251-10-12"

    def test_a_longer_secret_containing_a_shorter_one_is_masked_whole(self) -> None:
        assert mask("key=abcd1234efgh", ["abcd", "abcd1234efgh"]) == f"key={MASK}"

    def test_short_values_are_left_alone(self) -> None:
        assert mask("the abc of it", ["abc"]) == "the abc of it"


class TestMultiLineSecrets:
    def test_each_line_of_the_secret_is_masked_in_the_line_it_arrives_in(self) -> None:
        masker = Masker([GOOGLE_JSON])
        printed = [masker(f"DEBUG: {line}") for line in GOOGLE_JSON.splitlines()]
        assert found_in("\n".join(printed), [GOOGLE_JSON]) == []
        assert printed[0] == "DEBUG: {" and printed[-1] == "DEBUG: }"  # too short to leak

    def test_carriage_returns_split_lines_as_well(self) -> None:
        masker = Masker([HOSTILE["newlines"]])
        assert masker("> second-secret-line") == f"> {MASK}"
        assert masker("third-secret-line <") == f"{MASK} <"

    def test_the_escaped_single_line_form_of_a_multi_line_secret(self) -> None:
        encoded = json.dumps({"google_json": GOOGLE_JSON})
        assert mask(encoded, [GOOGLE_JSON]) == '{"google_json": "****"}'
