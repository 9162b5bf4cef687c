"""The configuration examples in the README load as written, with the values they show."""

import re
from pathlib import Path

from retrostride.assets.settings import load_duplicate_policy, load_limits, load_model_config, load_profiles

README = Path(__file__).resolve().parents[1] / "README.md"


def _example(first_table: str, into: Path) -> Path:
    """The README's TOML block that starts with `first_table`, written to a file."""
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    [block] = [b for b in blocks if b.startswith(first_table)]
    into.write_text(block, encoding="utf-8")
    return into


def test_the_retrostride_toml_example_loads(tmp_path):
    path = _example("[import]", tmp_path / "retrostride.toml")
    limits = load_limits(path)
    assert limits.max_file_bytes == 512 * 2**20 and limits.plausible["heart_rate_bpm"] == (25, 250)
    policy = load_duplicate_policy(path)
    assert policy.prefer == ("richest",) and policy.start_tolerance_s == 180


def test_the_athletes_example_loads(tmp_path):
    profiles = load_profiles(_example("[athletes.alice]", tmp_path / "athletes.toml"))
    assert profiles["alice"].timezone == "Europe/Berlin"


def test_the_model_file_example_loads(tmp_path):
    detection, energy = load_model_config(_example("[detection]", tmp_path / "model.toml"))
    assert detection.enter_ratio == 0.85 and energy.backward_multiplier == 1.35
