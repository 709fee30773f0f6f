import pytest

from vramplan.errors import InputError
from vramplan.units import GiB, MiB, cdiv, format_gib, parse_human_int, parse_size


def test_format_gib_prints_like_vllm():
    # vLLM's format_gib is str(round(b / GiB, 2)): no trailing zeros
    assert format_gib(9.2 * GiB) == "9.2"
    assert format_gib(int(44.30 * GiB)) == "44.3"
    assert format_gib(int(57.91 * GiB)) == "57.91"


@pytest.mark.parametrize("text,value", [
    ("8192", 8192), ("8k", 8000), ("8K", 8192), ("25.6k", 25600), ("32k", 32000), ("1M", 1 << 20),
    ("2G", 2 << 30), ("1g", 10**9),
])
def test_human_readable_ints_follow_vllm(text, value):
    # vLLM's human_readable_int: lower-case suffixes are decimal, upper-case binary
    assert parse_human_int(text) == value


def test_binary_suffix_refuses_decimals():
    with pytest.raises(InputError):
        parse_human_int("1.5K")


@pytest.mark.parametrize("text,value", [
    ("80GiB", 80 * GiB), ("24 GB", 24 * 10**9), ("512MiB", 512 * MiB), ("79.18", round(79.18 * GiB)), (3, 3 * GiB),
])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["", "abc", "-3", "12 parsecs"])
def test_parse_size_rejects(bad):
    with pytest.raises(InputError):
        parse_size(bad)


def test_cdiv():
    assert cdiv(65536, 128) == 512
    assert cdiv(1, 16) == 1
    assert cdiv(17, 16) == 2
