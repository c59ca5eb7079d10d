"""`advisor inspect-data` on files generated here with planted personal data, secrets, duplicates, near duplicates
and evaluation overlap: the counts exactly, the values masked everywhere, every format read, hostile files refused
with exit 2 and the file and line."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from advisor.cli import cli
from tests.conftest import run_advisor

pytest.importorskip("numpy")
pytest.importorskip("pyarrow")
pytest.importorskip("phonenumbers")
pytest.importorskip("detect_secrets")

RNG_SEED = 7
VOCAB = ["".join(random.Random(i).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3 + i % 6)) for i in range(600)]

# Planted values: each must be found (and counted once) and must never appear unmasked in any output.
EMAILS = ["ana.silva@example.com", "j.doe+work@mail.example.org", "ops@corp.example.net"]
PHONES = ["+1 415 555 0123", "+44 20 7946 0958"]
CARDS = ["4111 1111 1111 1111", "5555-5555-5555-4444"]
IBANS = ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"]
SSNS = ["078-05-1120"]
IPS = ["203.0.113.7", "2001:db8::8a2e:370:7334"]
SECRETS = ["AKIAIOSFODNN7EXAMPLE", "ghp_" + "Ab1" * 12]
PLANTED = [*EMAILS, *PHONES, *CARDS, *IBANS, *SSNS, *IPS, *SECRETS]
# Look-alikes that must not be counted: a card failing Luhn, an IBAN failing mod 97, never-issued SSNs,
# loopback and impossible addresses, a version number, a date.
DECOYS = "card 4111 1111 1111 1112 iban GB00 WEST 1234 5698 7654 32 ssn 000-12-3456 666-12-3456 ip 127.0.0.1 999.1.2.3"
DECOYS += " version 1.2.3 date 2024-01-15"


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def chat(user: str, assistant: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def one_word_changed(record: dict, rng: random.Random) -> dict:
    copy = json.loads(json.dumps(record))
    reply = copy["messages"][1]["content"].split(" ")
    reply[len(reply) // 2] = "zzzzchanged"
    copy["messages"][1]["content"] = " ".join(reply)
    return copy


def build(tmp_path):
    """train.jsonl (200 unique records + planted findings, 5 exact and 4 near duplicates, 5 invalid lines) and
    eval.jsonl (15 fresh records, 3 copied exactly from training and 2 nearly)."""
    rng = random.Random(RNG_SEED)
    records = [chat(words(rng, 40), words(rng, 150)) for _ in range(200)]
    planted = iter(PLANTED)
    for i, value in enumerate(planted):  # one finding per record, records 10, 13, 16, ...
        records[10 + 3 * i]["messages"][0]["content"] += f" reach {value} today"
    records[100]["messages"][0]["content"] += " " + DECOYS
    exact = [json.loads(json.dumps(records[i])) for i in (150, 151, 152, 153)]
    shouting = json.loads(json.dumps(records[154]))  # case and spacing differ: the same once normalised
    shouting["messages"][1]["content"] = "  " + shouting["messages"][1]["content"].upper().replace(" ", "   ")
    near = [one_word_changed(records[i], rng) for i in (160, 161, 162, 163)]
    lines = [json.dumps(r) for r in [*records, *exact, shouting, *near]]
    invalid = {
        3: '{"messages": [{"role": "user", "content": "hi"}',  # malformed JSON
        7: json.dumps(chat("hello", "")),  # empty assistant turn
        9: json.dumps({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}),
        12: json.dumps({"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "y"}]}),
        20: json.dumps(["not", "an", "object"]),
    }
    for line in sorted(invalid):
        lines.insert(line - 1, invalid[line])
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    evaluation = [chat(words(rng, 40), words(rng, 150)) for _ in range(15)]
    evaluation += [json.loads(json.dumps(records[i])) for i in (30, 31, 32)]
    evaluation += [one_word_changed(records[i], rng) for i in (40, 41)]
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text("\n".join(json.dumps(r) for r in evaluation) + "\n", encoding="utf-8")
    return train, eval_file


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="advisor")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("planted")
    train, eval_file = build(tmp)
    report = tmp / "report.md"
    res = invoke("inspect-data", str(train), "--eval", str(eval_file), "--json", "--report", str(report))
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), report.read_text(encoding="utf-8"), train, eval_file


def test_contract_fields_are_all_there(planted):
    data, *_ = planted
    for field in ("examples", "format", "invalid", "invalid_examples", "tokens", "duplicates", "eval_overlap", "pii"):
        assert field in data
    assert set(data["tokens"]) >= {"min", "p50", "p95", "max", "total", "basis"}
    assert set(data["pii"]) >= {"email", "phone", "credit_card", "iban", "ip_address", "secret"}
    assert {"license", "answers"} <= set(data)
    assert all(set(item) >= {"line", "message"} for item in data["invalid_examples"])


def test_counts_are_exact(planted):
    data, *_ = planted
    assert data["format"] == "chat"
    assert data["records"] == 214 and data["invalid"] == 5 and data["examples"] == 209
    assert [(e["line"], e["message"].split(":")[0]) for e in data["invalid_examples"]] == [
        (3, "not valid JSON"),
        (7, "messages[1].content"),
        (9, "messages[0].role"),
        (12, "messages[0].content"),
        (20, "a record must be an object, not a list"),
    ]
    assert data["duplicates"]["exact"] == 5
    assert data["duplicates"]["near"] == 4
    assert data["duplicates"]["threshold"] == 0.8
    assert data["eval_overlap"] == {"exact": 3, "near": 2, "eval_examples": 20, "threshold": 0.8}
    assert data["pii"] == {
        "email": 3,
        "phone": 2,
        "credit_card": 2,
        "iban": 2,
        "us_ssn": 1,
        "ip_address": 2,
        "secret": 2,
    }
    assert data["secret_types"] == {"AWSKeyDetector": 1, "GitHubTokenDetector": 1}
    assert data["answers"]["dataset_examples"] == 209 - 5
    assert data["answers"]["privacy"] == "personal_data_uncleared"
    assert data["license"] is None and data["answers"]["dataset_license"] is None


def test_findings_are_located(planted):
    data, _, train, _ = planted
    lines = train.read_text(encoding="utf-8").splitlines()
    assert len(data["pii_examples"]) == len(PLANTED)
    for finding in data["pii_examples"]:
        record = json.loads(lines[finding["line"] - 1])
        assert finding["field"] == "messages[0].content"
        assert finding["file"] == "train.jsonl"
        assert any(value in record["messages"][0]["content"] for value in PLANTED)


def test_values_are_masked_in_json_report_and_terminal(planted):
    data, markdown, train, eval_file = planted
    human = invoke("inspect-data", str(train), "--eval", str(eval_file))
    assert human.exit_code == 0
    outputs = {"json": json.dumps(data), "report": markdown, "terminal": human.output}
    for value in PLANTED:
        digits = "".join(c for c in value if c.isalnum())
        for name, text in outputs.items():
            assert value not in text, (value, name)
            assert digits not in "".join(c for c in text if c.isalnum()) or len(digits) < 8, (value, name)
    assert "a***@e***.com" in outputs["json"] and "************1111" in outputs["json"]


def test_token_lengths_and_truncation(planted):
    data, *_ = planted
    tokens = data["tokens"]
    assert tokens["basis"].startswith("approximate")
    assert tokens["min"] <= tokens["p50"] <= tokens["p95"] <= tokens["max"]
    assert tokens["total"] >= tokens["max"] * 100
    assert tokens["truncated"]["512"] == 0 and tokens["truncated"]["8192"] == 0


def test_the_models_own_tokenizer_counts_tokens(tmp_path):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(["one", "two", "three"])}}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = WhitespaceSplit()
    model = tmp_path / "model"
    model.mkdir()
    tokenizer.save(str(model / "tokenizer.json"))
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"text": "one two three"}) + "\n" + json.dumps({"text": "one two three one two"}) + "\n")
    res = invoke("inspect-data", str(data), "--model", str(model), "--json")
    assert res.exit_code == 0, res.output
    tokens = json.loads(res.stdout)["tokens"]
    assert (tokens["min"], tokens["max"], tokens["total"]) == (3, 5, 8)
    assert tokens["basis"].startswith("tokenizer:")
    missing = invoke("inspect-data", str(data), "--model", str(tmp_path), "--json")
    assert missing.exit_code == 2 and "tokenizer.json" in missing.stdout


RECORDS = [
    {
        "messages": [
            {"role": "user", "content": "write to ana.silva@example.com"},
            {"role": "assistant", "content": "ok"},
        ]
    },
    {"prompt": "translate hello", "completion": "bonjour"},
    {"text": "plain text example with enough words"},
]


def write_formats(folder):
    """The same three records as JSON, JSONL, CSV, Parquet and Arrow (the layout `datasets` save_to_disk writes:
    an Arrow IPC stream and state.json)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    (folder / "d.json").write_text(json.dumps(RECORDS))
    (folder / "d.jsonl").write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    csv_text = (
        'messages,prompt,completion,text\n"[{""role"": ""user"", ""content"": ""write to ana.silva@example.com""}'
    )
    csv_text += ', {""role"": ""assistant"", ""content"": ""ok""}]",,,\n'
    (folder / "d.csv").write_text(csv_text + ",translate hello,bonjour,\n,,,plain text example with enough words\n")
    chat_rows = [RECORDS[0]]
    pq.write_table(pa.Table.from_pylist(chat_rows), folder / "d.parquet")
    saved = folder / "saved"
    saved.mkdir()
    table = pa.Table.from_pylist([{"text": r["text"]} for r in RECORDS[2:]] * 2)
    with pa.ipc.new_stream(saved / "data-00000-of-00001.arrow", table.schema) as writer:
        writer.write_table(table)
    (saved / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (saved / "dataset_info.json").write_text("{}")


@pytest.mark.parametrize(
    ("name", "examples", "fmt", "emails"),
    [
        ("d.json", 3, "mixed", 1),
        ("d.jsonl", 3, "mixed", 1),
        ("d.csv", 3, "mixed", 1),
        ("d.parquet", 1, "chat", 1),
        ("saved", 2, "text", 0),
    ],
)
def test_each_format_is_read(tmp_path, name, examples, fmt, emails):
    write_formats(tmp_path / "f")
    res = invoke("inspect-data", str(tmp_path / "f" / name), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert (data["examples"], data["format"], data["pii"]["email"], data["invalid"]) == (examples, fmt, emails, 0)


def test_a_folder_with_data_files_and_a_card(tmp_path):
    folder = tmp_path / "ds"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "a.jsonl").write_text(json.dumps(RECORDS[1]) + "\n")
    (folder / "data" / "b.jsonl").write_text(json.dumps(RECORDS[2]) + "\n")
    (folder / "README.md").write_text("---\nlicense: cc-by-nc-4.0\npretty_name: x\n---\n# Card\n")
    res = invoke("inspect-data", str(folder), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["files"] == ["data/a.jsonl", "data/b.jsonl"]
    assert data["examples"] == 2 and data["format"] == "mixed"
    assert data["license"] == "CC-BY-NC-4.0" and data["answers"]["dataset_license"] == "CC-BY-NC-4.0"
    silent = tmp_path / "card.md"
    silent.write_text("---\npretty_name: x\n---\n")
    res = invoke("inspect-data", str(folder), "--card", str(silent), "--json")
    data = json.loads(res.stdout)
    assert data["license"] is None and any("states no licence" in note for note in data["notes"])


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b'{"text": "ok"}\n{"text": "bin\x00ary"}\n', "line 2: binary"),
        (b'{"text": "ok"}\n{"text": "caf\xe9"}\n', "line 2: not UTF-8"),
        (b'{"text": "ok"}\n{"text": "half \\ud800 pair"}\n', "line 2: a lone surrogate"),
        (b"[" * 200_000 + b"]" * 200_000 + b"\n", "line 1: JSON nested"),
        (b"", "no records"),
        (b"\n  \n", "no records"),
        (b"{not json}\n[1]\n", "no valid examples"),
    ],
    ids=["binary", "invalid-utf8", "lone-surrogate", "deep-nesting", "empty", "blank", "nothing-valid"],
)
def test_hostile_files_exit_2_naming_file_and_line(tmp_path, content, where):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    res = run_advisor("inspect-data", str(path), "--json")
    assert res.returncode == 2, res.stdout + res.stderr
    error = json.loads(res.stdout)["error"]
    assert where in error["message"] or any(where in f["message"] for f in error["fields"]), error
    assert "Traceback" not in res.stderr


def test_a_line_past_the_limit_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    from advisor.dataset import checks

    real = checks.load_checks()
    small = real.model_copy(update={"limits": real.limits.model_copy(update={"max_line_bytes": 4096})})
    monkeypatch.setattr("advisor.dataset.inspect.load_checks", lambda: small)
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"text": "x" * 100_000}) + "\n")
    res = invoke("inspect-data", str(path), "--json")
    assert res.exit_code == 2
    assert "line 2: longer than 4,096 bytes" in json.loads(res.stdout)["error"]["message"]


def test_missing_and_unknown_paths_exit_2_naming_the_field(tmp_path):
    res = invoke("inspect-data", str(tmp_path / "nope.jsonl"), "--json")
    assert res.exit_code == 2 and json.loads(res.stdout)["error"]["fields"][0]["field"] == "PATH"
    (tmp_path / "x.txt").write_text("hello")
    res = invoke("inspect-data", str(tmp_path / "x.txt"), "--json")
    assert res.exit_code == 2 and "unknown data format" in res.stdout
    good = tmp_path / "g.jsonl"
    good.write_text(json.dumps(RECORDS[2]) + "\n")
    res = invoke("inspect-data", str(good), "--eval", str(tmp_path / "none.jsonl"), "--json")
    assert res.exit_code == 2 and json.loads(res.stdout)["error"]["fields"][0]["field"] == "--eval"


def test_estimated_jaccard_follows_the_exact_one():
    """The MinHash estimate against the Jaccard similarity of the word 5-gram sets, computed exactly."""
    import numpy as np

    from advisor.dataset.checks import load_checks
    from advisor.dataset.duplicates import Signer, digest, normalise

    rules = load_checks().duplicates
    signer = Signer(rules)
    rng = random.Random(3)
    errors = []
    for changed in (0, 2, 5, 10, 20, 40):
        base = words(rng, 200).split(" ")
        other = list(base)
        for position in rng.sample(range(200), changed):
            other[position] = "qqq" + str(position)
        texts = [normalise(" ".join(base)), normalise(" ".join(other))]
        grams = [{tuple(t.split(" ")[i : i + 5]) for i in range(len(t.split(" ")) - 4)} for t in texts]
        exact = len(grams[0] & grams[1]) / len(grams[0] | grams[1])
        encoded = [t.encode() for t in texts]
        signatures, _ = signer.sign(encoded, np.array([digest(e) for e in encoded], dtype=np.uint64))
        estimate = float((signatures[0] == signatures[1]).mean())
        errors.append(abs(estimate - exact))
    assert max(errors) < 0.15, errors


def test_assess_with_data_lists_the_conflicts_in_json_and_report(tmp_path, planted):
    _, _, train, eval_file = planted
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "change_kind: style\nstability: stable\ncontext_tried: partly_works\ndataset_examples: 5000\n"
        "dataset_quality: curated\nprivacy: no_personal_data\neval_set: production_like\n"
    )
    report = tmp_path / "a.md"
    res = invoke(
        "assess",
        "--answers",
        str(answers),
        "--data",
        str(train),
        "--eval-data",
        str(eval_file),
        "--json",
        "--report",
        str(report),
    )
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    conflicts = {c["id"]: c for c in result["conflicts"]}
    assert {"measured.dataset_examples", "measured.privacy", "measured.eval_overlap"} <= set(conflicts)
    assert "3 email" in conflicts["measured.privacy"]["text"]
    assert result["answers"]["dataset_examples"] == 204 and result["evidence"]["dataset_examples"] == "measured"
    assert result["answers"]["privacy"] == "personal_data_uncleared"
    assert "privacy" in result["training_blockers"]
    markdown = report.read_text(encoding="utf-8")
    assert "measured.privacy" in markdown and "## Dataset: what the data shows" in markdown
    assert not any(value in markdown for value in PLANTED)


def test_cleared_personal_data_stays_cleared(tmp_path, planted):
    _, _, train, _ = planted
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"privacy": "personal_data_cleared"}))
    res = invoke("assess", "--answers", str(answers), "--data", str(train), "--json")
    result = json.loads(res.stdout)
    assert result["answers"]["privacy"] == "personal_data_cleared"
    assert "measured.privacy" not in {c["id"] for c in result["conflicts"]}


def test_eval_data_without_data_is_refused(tmp_path):
    answers = tmp_path / "answers.json"
    answers.write_text("{}")
    res = invoke("assess", "--answers", str(answers), "--eval-data", str(answers), "--json")
    assert res.exit_code == 2 and json.loads(res.stdout)["error"]["fields"][0]["field"] == "--eval-data"


def mcp_call(server, name: str, arguments: dict):
    import anyio
    from mcp import Client

    async def go():
        async with Client(server) as client:
            return await client.call_tool(name, arguments)

    return anyio.run(go)


def test_mcp_inspect_dataset_reads_only_inside_its_data_folder(tmp_path, planted):
    pytest.importorskip("mcp")
    from advisor.agents.mcp_server import build_server

    _, _, train, eval_file = planted
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "train.jsonl").write_bytes(train.read_bytes())
    (data_dir / "eval.jsonl").write_bytes(eval_file.read_bytes())
    outside = tmp_path / "secret.jsonl"
    outside.write_bytes(train.read_bytes())
    (data_dir / "link.jsonl").symlink_to(outside)
    server = build_server(data_dir=data_dir)

    result = mcp_call(server, "inspect_dataset", {"path": "train.jsonl", "eval_path": "eval.jsonl"})
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["examples"] == 209 and data["eval_overlap"]["exact"] == 3
    assert not any(value in json.dumps(data) for value in PLANTED)

    for path, message in [
        (str(outside), "must be relative"),
        ("../secret.jsonl", "`..`"),
        ("link.jsonl", "outside the data folder"),
        ("missing.jsonl", "no such file"),
    ]:
        refused = mcp_call(server, "inspect_dataset", {"path": path})
        assert refused.is_error
        error = json.loads(refused.content[0].text)["error"]
        assert error["fields"][0]["field"] == "path" and message in error["fields"][0]["message"], error

    assessed = mcp_call(
        server,
        "assess_lora_fit",
        {"answers": {"privacy": "no_personal_data"}, "data": "train.jsonl", "eval_data": "eval.jsonl"},
    )
    assert not assessed.is_error, assessed.content
    ids = {c["id"] for c in assessed.structured_content["conflicts"]}
    assert {"measured.privacy", "measured.eval_overlap"} <= ids

    no_folder = mcp_call(build_server(), "inspect_dataset", {"path": "train.jsonl"})
    assert no_folder.is_error and json.loads(no_folder.content[0].text)["error"]["code"] == "refused"


TOOL_CALL = {
    "messages": [
        {"role": "system", "content": "You look up orders."},
        {"role": "user", "content": "Where is order 88?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"order": 88}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
        {"role": "assistant", "content": [{"type": "text", "text": "It shipped yesterday."}], "weight": 1},
    ],
    "tools": [{"type": "function", "function": {"name": "lookup"}}],
}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (TOOL_CALL, None),
        ({"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "yo"}]}, None),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]},
            "messages[1].role: a tool message must follow an assistant message that calls a tool",
        ),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]},
            "messages[1].role: a system message after the conversation started",
        ),
        ({"messages": [{"role": "user", "content": "a"}]}, "messages: no assistant message (nothing to learn)"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "weight": 2}]},
            "messages[1].weight: must be 0 or 1, not 2",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
                ]
            },
            "messages[1].tool_calls[0].function.arguments: must be a JSON string, not an object",
        ),
        ({"prompt": "a", "completion": " "}, "completion: empty"),
        ({"text": 5}, "text: must be a string, not a number"),
        ({"other": "x"}, "no messages, prompt/completion or text field (keys: 'other')"),
    ],
    ids=[
        "tool-calls",
        "trl-conversational",
        "tool-first",
        "late-system",
        "no-assistant",
        "weight",
        "arguments",
        "empty-completion",
        "text-type",
        "unknown-keys",
    ],
)
def test_records_are_validated_as_the_fine_tuning_formats_define_them(tmp_path, record, message):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"text": "a valid neighbour"}) + "\n" + json.dumps(record) + "\n")
    res = invoke("inspect-data", str(path), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    if message is None:
        assert data["invalid"] == 0 and data["formats"].get("chat") == 1
    else:
        assert data["invalid_examples"] == [{"line": 2, "message": message, "file": "one.jsonl"}]


@pytest.mark.parametrize(
    ("folder", "files"),
    [("dataset", ["data-00000-of-00001.arrow"]), ("dataset_dict", ["train/data-00000-of-00001.arrow"])],
)
def test_folders_written_by_datasets_save_to_disk(folder, files):
    """Read from folders the `datasets` library wrote (tests/data/saved-by-datasets/README.txt): a Dataset, and a
    DatasetDict whose train split is read."""
    from tests.conftest import ROOT

    res = invoke("inspect-data", str(ROOT / "tests" / "data" / "saved-by-datasets" / folder), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert (data["files"], data["examples"], data["format"], data["pii"]["email"]) == (files, 2, "chat", 1)


def test_error_messages_do_not_echo_record_content(tmp_path):
    path = tmp_path / "leaky.jsonl"
    email = "leak.me@example.com"
    path.write_text(
        json.dumps({"messages": [{"role": email, "content": "x"}, {"role": "assistant", "content": "y"}]})
        + "\n"
        + json.dumps({email: "x"})
        + "\n"
        + json.dumps({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]})
        + "\n"
        + json.dumps({"text": "fine"})
        + "\n"
    )
    res = invoke("inspect-data", str(path), "--json")
    assert res.exit_code == 0 and email not in res.stdout
    messages = [e["message"] for e in json.loads(res.stdout)["invalid_examples"]]
    assert messages[0].startswith("messages[0].role: a string of 19 characters is not one of")
    assert messages[2].startswith("messages[0].role: 'robot' is not one of")


def test_a_line_past_the_real_limit_exits_2(tmp_path):
    """A single line over the 64 MiB limit (a hostile multi-GB line is refused the same way, at the limit)."""
    from advisor.dataset.checks import load_checks

    limit = load_checks().limits.max_line_bytes
    path = tmp_path / "long.jsonl"
    with path.open("wb") as fh:
        fh.write(b'{"text": "ok"}\n{"text": "')
        chunk = b"x" * (1 << 20)
        for _ in range(limit // len(chunk) + 1):
            fh.write(chunk)
        fh.write(b'"}\n')
    res = invoke("inspect-data", str(path), "--json")
    assert res.exit_code == 2
    assert f"line 2: longer than {limit:,} bytes" in json.loads(res.stdout)["error"]["message"]


def test_a_catalog_model_gives_approximate_counts_and_says_so(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "some words here"}) + "\n")
    res = invoke("inspect-data", str(path), "--model", "qwen2.5-0.5b", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["tokens"]["basis"].startswith("approximate")
    assert any("qwen2.5-0.5b is not a local folder" in note for note in data["notes"])


def test_the_shipped_dataset_checks_load_and_cite_listed_sources():
    from advisor.dataset.checks import load_checks

    checks = load_checks()
    assert 0 < checks.duplicates.threshold < 1 and checks.duplicates.num_perm % checks.duplicates.bands == 0
    for sid in (checks.tokens.approximate_source, checks.duplicates.source, checks.privacy.source):
        assert checks.sources[sid].cite()


def test_assess_with_data_on_a_terminal_shows_the_dataset_masked(planted):
    _, _, train, _ = planted
    res = invoke("assess", "--example", "customer-replies", "--data", str(train))
    assert res.exit_code == 0, res.output
    assert "Dataset (measured)" in res.output and "email 3" in res.output
    assert not any(value in res.output for value in PLANTED)


def test_parquet_without_pyarrow_names_the_install_command(tmp_path, monkeypatch):
    write_formats(tmp_path / "f")
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    res = invoke("inspect-data", str(tmp_path / "f" / "d.parquet"), "--json")
    assert res.exit_code == 1
    error = json.loads(res.stdout)["error"]
    assert error["code"] == "missing_dependency" and "pip install 'advisor[data]'" in error["message"]
