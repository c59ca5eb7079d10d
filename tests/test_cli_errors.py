import json
from importlib.metadata import version

from tests.conftest import run_advisor


def test_unknown_command_is_a_usage_error_with_json():
    res = run_advisor("no-such-command", "--json")
    assert res.returncode == 2
    err = json.loads(res.stdout)["error"]
    assert err["code"] == "invalid_input"
    assert "no-such-command" in err["message"]


def test_version():
    res = run_advisor("--version")
    assert res.returncode == 0
    assert res.stdout == f"advisor {version('advisor')}\n"
