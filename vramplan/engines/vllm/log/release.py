"""Which vLLM release wrote a log that does not say: inferred from the lines it does print.

vLLM's messages changed wording from release to release, and vllm-ascend moved from its own NPU worker to
vLLM's ``memory_profiling``. Each :data:`CLUES` entry is one such change, read in the released sources
(the citation says where), and bounds the release a line could come from. :func:`infer_release` intersects
the bounds of the clues a log shows and picks the newest release in the range whose rule set has the log's
engine (V0 or V1) and platform. The result says which lines chose it, and when lines disagree or the range
spans several rule sets, says that too. A version the log states, or the user's ``--vllm-version``, is
never replaced by an inference (``explain.inputs_from_facts``).

Clues come in two strengths. A *strong* clue is tied to the arithmetic that produced the logged figures
(the non-KV formula, vllm-ascend's NPU worker, the V0 engine, vLLM 0.34's extensible KV cache); a *weak*
one is only a print format. When the clues cannot all hold (an edited log, two runs pasted together), the
strong ones are intersected first and a weak one that would empty the range is set aside and reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Clue", "ReleaseInference", "CLUES", "ASCEND_NEWEST", "infer_release", "release_text"]

Release = tuple[int, int, int]

ASCEND_NEWEST: Release = (0, 23, 0)
"""The newest vllm-ascend release vramplan has read (0.23.0, PyPI wheels; 0.23.0.post1 is an sdist of the same
line). vllm-ascend releases follow the vLLM release they run on (vllm-ascend 0.18.0 requires vLLM 0.18), so an
Ascend log comes from vLLM 0.23 or older unless its lines say otherwise (engines/vllm/rules/versions.py,
PLATFORM_DEFAULT_VERSION's note)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Clue:
    """One change in what vLLM (or vllm-ascend) prints, and the releases whose logs can show it."""

    name: str
    """Short id (tests, JSON)."""
    says: str
    """What the log shows, in words ('"non-torch forward increase memory" in the profiling summary')."""
    low: Release | None
    """First release that prints it (None: no lower bound read)."""
    end: Release | None
    """First release that no longer prints it (None: still printed by the newest read)."""
    strong: bool
    """Tied to the arithmetic behind the logged figures (see module doc), not only to a print format."""
    source: str
    """Where the change was read: release, file, function."""
    platform: str | None = None
    """Only for logs of this platform (None: any)."""


def _texts(f, kinds: tuple[str, ...] | None = None):
    for e in f.events:
        if kinds is None or e.kind in kinds:
            yield e.text


def _any(f, needle: str, kinds: tuple[str, ...] | None = None) -> bool:
    return any(needle in t for t in _texts(f, kinds))


_UTIL = re.compile(r"Requested memory: (\d{1,3})\.(\d{1,12}) \(util\)")
_LOAD_MEM = re.compile(r"Model loading took (\d{1,6})\.(\d{1,8}) GiB memory and")
_LOAD_NO_MEM = re.compile(r"Model loading took \d{1,6}(?:\.(\d{1,8}))? GiB and")
_KV_SIZE = re.compile(r"KV cache size: [\d,]{1,24} tokens")
_ASCEND_BYTES = re.compile(r"Available memory: \d{4,20}, total memory: \d{4,20}")


def _util_decimals(f) -> set[int]:
    return {len(m.group(2)) for t in _texts(f, ("requested_memory",)) for m in _UTIL.finditer(t)}


def _load_decimals(f) -> set[int]:
    return {len(m.group(2)) for t in _texts(f, ("weights",)) for m in _LOAD_MEM.finditer(t)}


def _kv_lines(f) -> tuple[bool, bool]:
    """(one-line 'KV cache size: N tokens, Maximum concurrency ...' seen, two-line form seen)."""
    one = two = False
    for t in _texts(f, ("kv_cache_tokens",)):
        m = _KV_SIZE.search(t)
        if m is None:
            continue
        if "Maximum concurrency" in t[m.end():m.end() + 40]:
            one = True
        else:
            two = True
    return one, two


def _ascend_upstream_kv(f) -> bool:
    return _any(f, "Available KV cache memory", ("kv_cache_memory",))


def _ascend_old_kv(f) -> bool:
    return any(_ASCEND_BYTES.search(t) for t in _texts(f, ("kv_cache_memory",)))


CLUES: tuple[tuple[Clue, Callable[[Any], bool]], ...] = (
    (Clue(name="profile_total_consumed", says='"total consumed (from mem_get_info)" in the profiling summary',
          low=(0, 27, 0), end=None, strong=True,
          source="vLLM 0.27.0 vllm/utils/mem_utils.py:MemoryProfilingResult.__repr__ (the consumed-memory non-KV formula)"),
     lambda f: _any(f, "total consumed (from mem_get_info)", ("memory_profile",))),
    (Clue(name="profile_non_torch_forward", says='"non-torch forward increase memory" in the profiling summary',
          low=(0, 9, 2), end=(0, 27, 0), strong=True,
          source="vLLM 0.12.0-0.26.0 vllm/utils/mem_utils.py:MemoryProfilingResult.__repr__ (weights + torch peak + "
                 "non-torch; 0.27.0 prints 'total consumed'; the lower bound is PR #19312's release, not read)"),
     lambda f: _any(f, "non-torch forward increase memory", ("memory_profile",))),
    (Clue(name="v034_extensible", says="vLLM 0.34's extensible KV cache lines", low=(0, 34, 0), end=None, strong=True,
          source="vLLM 0.34.0 vllm/v1/worker/gpu_worker.py (Memory after warmup / Extended KV cache)"),
     lambda f: f.era == "v1-v0.34"),
    (Clue(name="v034_extensible_module", says="lines logged from v1/worker/extensible_kv_cache.py",
          low=(0, 34, 0), end=None, strong=True,
          source="vLLM 0.34.0 vllm/v1/worker/extensible_kv_cache.py (new in 0.34; e.g. its 'Committed N of M KV "
                 "cache blocks' debug line, logged before a startup that dies in warm-up prints the summary lines)"),
     lambda f: any(s.endswith("extensible_kv_cache.py") for s in getattr(f, "source_files", ()))),
    (Clue(name="v034_kv_memory_hint", says="the KV-memory error ends with 0.34's hint "
          "'(with the extensible KV cache it defaults to 1.0)'", low=(0, 34, 0), end=None, strong=True,
          source="vLLM 0.34.0 vllm/v1/core/kv_cache_planning.py:_more_kv_cache_memory_hint (new in 0.34)"),
     lambda f: "with the extensible KV cache it defaults to 1.0" in (f.error_message or "")),
    (Clue(name="v0_one_line_profile", says="V0's one-line 'Memory profiling results: total_gpu_memory=...'",
          low=(0, 6, 3), end=(0, 6, 5), strong=True,
          source="vLLM 0.6.4 vllm/worker/worker.py:Worker.determine_num_available_blocks (PR #9352; 0.6.5 rewrote it)"),
     lambda f: f.era == "v0-pr9352"),
    (Clue(name="v0_engine", says="V0 engine lines (no V1 engine core)", low=None, end=(0, 11, 0), strong=True,
          source="vLLM 0.11.0 removed the V0 engine (vllm/engine/llm_engine.py is the V1 front end from 0.11)"),
     lambda f: f.era.startswith("v0")),
    (Clue(name="v0_baseline_profile", says="V0's 'the current vLLM instance can use ...' profiling lines",
          low=(0, 6, 5), end=(0, 11, 0), strong=False,
          source="vLLM 0.6.5 vllm/worker/worker.py:Worker.determine_num_available_blocks (PR #10511, the baseline "
                 "snapshot; rules/versions.py ENDS)"),
     lambda f: f.era == "v0-pr10511"),
    (Clue(name="util_two_decimals", says='"Requested memory: X.XX (util)" (two decimals)', low=(0, 10, 1),
          end=(0, 14, 0), strong=False,
          source="vLLM 0.12.0/0.13.0 vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory prints the util "
                 "with %.2f; 0.14.1 with %f; the lower bound is PR #21429's release, not read"),
     lambda f: 2 in _util_decimals(f)),
    (Clue(name="util_six_decimals", says='"Requested memory: X.XXXXXX (util)" (%f)', low=(0, 14, 0), end=None,
          strong=False, source="vLLM 0.14.1-0.34.0 vllm/v1/worker/gpu_worker.py:Worker.determine_available_memory (%f)"),
     lambda f: 6 in _util_decimals(f)),
    (Clue(name="load_four_decimals", says='"Model loading took X.XXXX GiB memory and" (four decimals)', low=(0, 10, 1),
          end=(0, 14, 0), strong=False,
          source="vLLM 0.12.0/0.13.0 vllm/v1/worker/gpu_model_runner.py:GPUModelRunner.load_model (%.4f); 0.14.1 "
                 "prints format_gib (at most two decimals)"),
     lambda f: 4 in _load_decimals(f)),
    (Clue(name="load_format_gib", says='"Model loading took X.XX GiB memory and" (at most two decimals)',
          low=(0, 14, 0), end=None, strong=False,
          source="vLLM 0.14.1-0.34.0 GPUModelRunner.load_model prints format_gib (round to 2); 0.13.0 prints %.4f"),
     lambda f: bool(_load_decimals(f) & {1, 2})),
    (Clue(name="load_v2_no_memory", says='the V2 runner\'s "Model loading took X GiB and" (no "memory")', low=None,
          end=(0, 28, 0), strong=False,
          source="vLLM 0.17.0-0.27.0 vllm/v1/worker/gpu/model_runner.py:GPUModelRunner.load_model; 0.28.0 adds 'memory'"),
     lambda f: 2 >= max((len(m.group(1) or "") for t in _texts(f, ("weights",)) for m in _LOAD_NO_MEM.finditer(t)),
                        default=9)),
    (Clue(name="load_four_decimals_no_memory", says='"Model loading took X.XXXX GiB and" (four decimals, no "memory")',
          low=None, end=(0, 12, 0), strong=False,
          source="V0 model_runner.py and the early V1 gpu_model_runner.py (%.4f GiB and); vLLM 0.12.0 "
                 "GPUModelRunner.load_model prints 'GiB memory and'"),
     lambda f: 4 in {len(m.group(1) or "") for t in _texts(f, ("weights",)) for m in _LOAD_NO_MEM.finditer(t)}),
    (Clue(name="kv_size_two_lines", says='"GPU KV cache size: N tokens" on a line of its own', low=None, end=(0, 28, 0),
          strong=False,
          source="vLLM 0.12.0-0.27.0 vllm/v1/core/kv_cache_utils.py (two info_once lines); 0.28.0 prints one line "
                 "with the concurrency"),
     lambda f: _kv_lines(f)[1] and not _kv_lines(f)[0]),
    (Clue(name="kv_size_one_line", says='"KV cache size: N tokens, Maximum concurrency ..." on one line',
          low=(0, 28, 0), end=None, strong=False,
          source="vLLM 0.28.0 vllm/v1/core/kv_cache_utils.py (one info line; two lines up to 0.27.0)"),
     lambda f: _kv_lines(f)[0] and not _kv_lines(f)[1]),
    (Clue(name="cudagraph_estimate_line", says='"Estimated CUDA graph memory: X GiB total"', low=(0, 18, 0), end=None,
          strong=False,
          source="vLLM 0.18.0 vllm/v1/worker/gpu_model_runner.py:GPUModelRunner.profile_cudagraph_memory (absent in 0.17.0)"),
     lambda f: _any(f, "Estimated CUDA graph memory:", ("cudagraph_estimate",))),
    (Clue(name="ascend_memory_profiling", says="vllm-ascend with vLLM's memory profiling ('Available KV cache memory')",
          low=(0, 14, 0), end=None, strong=True, platform="ascend",
          source="vllm-ascend 0.18.0/0.23.0 vllm_ascend/worker/worker.py:NPUWorker.determine_available_memory "
                 "(memory_profiling; 0.9.1-0.14.0rc1 log 'Available memory: <bytes>, total memory: <bytes>' instead)"),
     _ascend_upstream_kv),
    (Clue(name="ascend_own_worker", says="vllm-ascend's own NPU worker line 'Available memory: <bytes>, total memory: <bytes>'",
          low=(0, 7, 0), end=(0, 14, 0), strong=True, platform="ascend",
          source="vllm-ascend 0.9.1-0.13 vllm_ascend/worker/worker_v1.py:NPUWorker.determine_available_memory"),
     lambda f: _ascend_old_kv(f) and not _ascend_upstream_kv(f)),
    (Clue(name="ascend_worker_v1_module", says="vllm-ascend's worker_v1.py (NPUWorker) in the log's frames or prefixes",
          low=(0, 7, 0), end=(0, 14, 0), strong=True, platform="ascend",
          source="vllm-ascend 0.9.1 vllm_ascend/worker/worker_v1.py:NPUWorker; 0.14.0rc1-0.23.0 have worker/worker.py only"),
     lambda f: any(s.endswith("worker_v1.py") for s in getattr(f, "source_files", ()))),
)
"""(clue, test on ``LogFacts``) pairs. Bounds are where the sources were read; a bound nobody read is None."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseInference:
    """The release a log without a version line was inferred to come from."""

    version: str
    """The release compared with: the newest in the range with the log's engine and platform (e.g. "0.23.0")."""
    low: str | None
    """Oldest release the evidence allows ("0.14"), None when nothing bounds it from below."""
    high: str | None
    """Newest release the evidence allows ("0.23"), None when nothing bounds it from above."""
    evidence: tuple[str, ...]
    """The clues used: what the log shows, the bound, the source."""
    set_aside: tuple[str, ...] = ()
    """Clues that disagree with the stronger ones and were not used (an edited or pasted-together log)."""
    seen: tuple[str, ...] = ()
    """Other things the log shows that name a release but do not bound it (package versions vramplan does not map)."""
    ambiguous: bool = False
    """Whether the range holds several rule sets, or clues disagreed."""
    note: str = ""
    """One line for the report: "release not in the log; inferred 0.14-0.23 from ...; compared at 0.23.0 ..."."""
    rule_sets: tuple[tuple[str, str], ...] = ()
    """(rule set label, the newest release in the range it plans) for each rule set in the range with the log's
    engine, newest first: what ``explain --compare`` re-plans to say whether the range's rule sets agree."""

    @property
    def range(self) -> str:
        return _range_text(self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "range": self.range, "low": self.low, "high": self.high,
                "inferred": True, "evidence": list(self.evidence), "set_aside": list(self.set_aside),
                "seen": list(self.seen), "ambiguous": self.ambiguous, "note": self.note,
                "rule_sets": [{"rules": label, "version": v} for label, v in self.rule_sets]}


def release_text(r: Release) -> str:
    return f"{r[0]}.{r[1]}" if r[2] == 0 else f"{r[0]}.{r[1]}.{r[2]}"


def _last_before(end: Release) -> str:
    """The newest release before ``end`` in words: before 0.27.0 is '0.26', before 0.6.5 is '0.6.4'."""
    if end[2] > 0:
        return f"{end[0]}.{end[1]}.{end[2] - 1}"
    return f"{end[0]}.{end[1] - 1}"


def _range_text(low: str | None, high: str | None) -> str:
    if low and high:
        return low if low == high else f"{low}-{high}"
    if low:
        return f"{low} or newer"
    if high:
        return f"{high} or older"
    return "any release"


def _bound(c: Clue) -> str:
    if c.low and c.end:
        return f"{release_text(c.low)}-{_last_before(c.end)}"
    if c.low:
        return f">= {release_text(c.low)}"
    if c.end:
        return f"<= {_last_before(c.end)}"
    return "any"


def _describe(c: Clue) -> str:
    return f"{c.says} ({_bound(c)}: {c.source})"


def _intersect(lo: Release | None, end: Release | None, c: Clue) -> tuple[Release | None, Release | None]:
    if c.low is not None and (lo is None or c.low > lo):
        lo = c.low
    if c.end is not None and (end is None or c.end < end):
        end = c.end
    return lo, end


def _empty(lo: Release | None, end: Release | None) -> bool:
    return lo is not None and end is not None and lo >= end


_PACKAGE_VERSION = re.compile(r"(\d{1,3})\.(\d{1,4})(?:\.(\d{1,4}))?")


TORCH_NPU_PINS: tuple[tuple[str, Release, tuple[int, int]], ...] = (
    ("0.9.1", (0, 9, 1), (2, 5)),
    ("0.14.0rc1", (0, 14, -1), (2, 9)),
    ("0.18.0", (0, 18, 0), (2, 9)),
    ("0.23.0", (0, 23, 0), (2, 10)),
)
"""(vllm-ascend release read, as a release tuple (an rc one below), the torch_npu major.minor its wheel requires:
Requires-Dist torch-npu==2.5.1.post1 / 2.9.0 / 2.9.0 / 2.10.0.post4)."""


def _torch_npu_clue(value: str) -> Clue | None:
    """torch_npu X.Y bounds the vllm-ascend release between the releases read that require an older and a newer
    torch_npu (pins only move forward). Weak: releases not read may pin differently within those bounds."""
    m = _PACKAGE_VERSION.match(value)
    if not m:
        return None
    t = (int(m.group(1)), int(m.group(2)))
    older = [r for r in TORCH_NPU_PINS if r[2] < t]
    newer = [r for r in TORCH_NPU_PINS if r[2] > t]
    same = [r[0] for r in TORCH_NPU_PINS if r[2] == t]
    low = (older[-1][1][0], older[-1][1][1], older[-1][1][2] + 1) if older else None
    end = newer[0][1] if newer else None
    if low is None and end is None:
        return None
    pins = f"required by vllm-ascend {', '.join(same)}" if same else "required by no vllm-ascend release read"
    return Clue(name="torch_npu_version", says=f"torch_npu {value}", low=low, end=end, strong=False, platform=None,
                source=f"torch_npu {t[0]}.{t[1]} is {pins} (wheels 0.9.1, 0.14.0rc1, 0.18.0, 0.23.0 Requires-Dist)")


def _package_clues(f) -> tuple[list[Clue], list[str]]:
    """Clues from package versions the log printed (``LogFacts.packages``): vllm-ascend X.Y.Z runs on vLLM X.Y
    (vllm-ascend 0.14.0rc1, 0.18.0, 0.23.0 check ``vllm_version_is("0.14.0" / "0.18.0" / "0.23.0")``); torch_npu
    through the releases' pins (:data:`TORCH_NPU_PINS`). CANN versions are reported, not used."""
    clues: list[Clue] = []
    seen: list[str] = []
    for name, value in sorted((getattr(f, "packages", None) or {}).items()):
        m = _PACKAGE_VERSION.match(str(value))
        clue = None
        if name == "vllm_ascend" and m:
            major, minor = int(m.group(1)), int(m.group(2))
            clue = Clue(name="vllm_ascend_version", says=f"vllm-ascend {value}", low=(major, minor, 0),
                        end=(major, minor + 1, 0), strong=True, platform=None,
                        source="vllm-ascend releases run on the vLLM release of the same number (0.14.0rc1, 0.18.0, "
                               "0.23.0 vllm_ascend/utils.py:vllm_version_is checks)")
        elif name == "torch_npu":
            clue = _torch_npu_clue(str(value))
        if clue is not None:
            clues.append(clue)
        else:
            seen.append(f"{name} {value}")
    return clues, seen


_BASENAME_ONLY_AMBIGUOUS = frozenset({"model_runner.py"})
"""File names two engines share (the V2 runner's gpu/model_runner.py and V0's worker/model_runner.py): a prefix
that gives only the file name is not matched for them."""


def _fingerprint_clues(f, plat: str) -> list[Clue]:
    """Clues from where a message was logged ("[kv_cache_utils.py:1286] GPU KV cache size: ..."): the releases
    read that log it from that line, bounded by the neighbouring releases read that log it elsewhere
    (``_fingerprints.py``, built by tools/release_fingerprints.py)."""
    from ._fingerprints import ANCHORS, FINGERPRINTS

    out: dict[tuple[str, str], Clue] = {}
    for src, text in getattr(f, "source_lines", ()) or ():
        path, _, line = str(src).rpartition(":")
        if not line.isdecimal() or not path or len(line) > 7:
            continue
        n = int(line)
        path = path.lstrip("./")
        for anchor, needle in ANCHORS.items():
            if needle not in text:
                continue
            for key, rows in FINGERPRINTS.get(anchor, {}).items():
                kind, _, rel = key.partition(":")
                if kind == "ascend" and plat != "ascend":
                    continue
                if "/" in path:
                    if not (rel.endswith(path) or path.endswith(rel)):
                        continue
                elif rel.rsplit("/", 1)[-1] != path or path in _BASENAME_ONLY_AMBIGUOUS:
                    continue
                hits = [r for r in rows if n in r[2]]
                if not hits or (anchor, key) in out:
                    continue
                first, last = hits[0][1], hits[-1][1]
                before = [r for r in rows if r[1] < first]
                after = [r for r in rows if r[1] > last]
                low = (before[-1][1][0], before[-1][1][1], before[-1][1][2] + 1) if before else None
                end = after[0][1] if after else None
                pkg = "vllm-ascend" if kind == "ascend" else "vLLM"
                where = ", ".join(r[0] for r in hits)
                elsewhere = ", ".join(r[0] for r in (before[-1:] + after[:1]))
                out[(anchor, key)] = Clue(
                    name=f"line_{anchor}", says=f"'{needle}' logged from {path}:{n}", low=low, end=end, strong=True,
                    source=f"{pkg} {where} {'vllm_ascend' if kind == 'ascend' else 'vllm'}/{rel} logs it at line {n}"
                           + (f"; {elsewhere} elsewhere" if elsewhere else ""),
                    platform="ascend" if kind == "ascend" else None)
    return list(out.values())


def infer_release(f, *, platform: str | None = None) -> ReleaseInference:
    """The release ``f`` (a :class:`LogFacts` without ``vllm_version``) most likely came from (see module doc).

    ``platform`` is the platform the comparison plans for (default: the log's). Never raises."""
    from ..rules.versions import SUPPORTED, for_version

    plat = platform or f.platform or "cuda"
    found: list[Clue] = []
    for clue, test in CLUES:
        if clue.platform is not None and clue.platform != plat:
            continue
        try:
            hit = bool(test(f))
        except Exception:  # a mangled log never stops the inference  # noqa: BLE001
            hit = False
        if hit:
            found.append(clue)
    pkg_clues, seen = _package_clues(f)
    try:
        line_clues = _fingerprint_clues(f, plat)
    except Exception:  # noqa: BLE001
        line_clues = []
    found = pkg_clues + line_clues + found

    lo: Release | None = None
    end: Release | None = None
    used: list[Clue] = []
    aside: list[Clue] = []
    for strong in (True, False):
        for c in found:
            if c.strong != strong:
                continue
            nlo, nend = _intersect(lo, end, c)
            if _empty(nlo, nend):
                aside.append(c)
                continue
            lo, end, used = nlo, nend, used + [c]

    # what the platform's releases allow, applied only where the lines leave room for it
    prior: list[str] = []
    if plat == "ascend" and (end is None or end > (ASCEND_NEWEST[0], ASCEND_NEWEST[1] + 1, 0)):
        cap = (ASCEND_NEWEST[0], ASCEND_NEWEST[1] + 1, 0)
        if lo is None or lo < cap:
            end = cap
            prior.append(f"vllm-ascend has no release past {release_text(ASCEND_NEWEST)} (the newest vramplan read)")
    # the cap stands unless a 0.34 line was seen, or lines sit where only releases after 0.33.0 log them (a
    # startup with --kv-cache-memory-bytes or the extensible cache off prints none of 0.34's lines)
    post_033_lines = any(c.name.startswith("line_") and c.low is not None and c.low > (0, 33, 0) for c in used)
    if plat != "ascend" and not post_033_lines and not any(
            c.name in ("v034_extensible", "v034_extensible_module", "v034_kv_memory_hint") for c in used) \
            and (end is None or end > (0, 34, 0)):
        if lo is None or lo < (0, 34, 0):
            end = (0, 34, 0)
            prior.append("no vLLM 0.34 extensible-KV lines (0.34 prints them at startup on CUDA and ROCm)")

    engine = "v0" if f.era.startswith("v0") else "v1"
    version = _newest_fitting(lo, end, engine, plat, SUPPORTED, for_version)
    low_text = release_text(lo) if lo else None
    high_text = _last_before(end) if end else None
    if lo and end and end[2] == 0 and lo[2] > 0 and lo[:2] == (end[0], end[1] - 1):
        high_text += ".x"  # 0.27.1-0.27.x, not 0.27.1-0.27
    reps: dict[str, str] = {}
    for p in _candidates(lo, end, SUPPORTED):
        rules = _rules_at(p, plat, for_version)
        if rules is not None and rules.engine == engine and rules.label not in reps:
            reps[rules.label] = ".".join(map(str, p))
    modules = set(reps)  # the rule sets of the range that run the log's engine
    ambiguous = bool(aside) or len(modules) > 1
    evidence = tuple(_describe(c) for c in used) + tuple(prior)
    rng = _range_text(low_text, high_text)
    why = "; ".join(c.says for c in used) or "no release-specific lines"
    if prior:
        why += "; " + "; ".join(prior)
    note = f"release not in the log; inferred {rng} from {why}"
    if aside:
        note += "; set aside as disagreeing: " + "; ".join(c.says for c in aside)
    if len(modules) > 1:
        note += f"; ambiguous: {rng} spans {len(modules)} rule sets, the newest release consistent with the log is used"
    note += f"; --compare plans it at {version}"
    return ReleaseInference(version=version, low=low_text, high=high_text, evidence=evidence,
                            set_aside=tuple(_describe(c) for c in aside), seen=tuple(seen), ambiguous=ambiguous,
                            note=note, rule_sets=tuple(reps.items()))


def _candidates(lo: Release | None, end: Release | None, supported) -> list[Release]:
    """Release points to try, newest first: each minor line's .0, the range's own ends."""
    newest = max(v for _, v in supported)
    pts = {(0, m, 0) for m in range(6, newest[1] + 1)} | {v for _, v in supported} | {(0, 6, 3), (0, 6, 4)}
    if lo is not None:
        pts.add(lo)
    if end is not None and end[2] > 0:
        pts.add((end[0], end[1], end[2] - 1))
    return sorted((p for p in pts if (lo is None or p >= lo) and (end is None or p < end)), reverse=True)


def _rules_at(p: Release, plat: str, for_version):
    """The rule set that plans release ``p``, or None where only a newer one would stand in (a release older
    than every rule set of the platform): that one is not a rule set of the range."""
    try:
        rules = for_version(p, allow_older=True, platform=plat)
    except Exception:  # noqa: BLE001
        return None
    return None if rules.version > p else rules


def _newest_fitting(lo, end, engine, plat, supported, for_version) -> str:
    for p in _candidates(lo, end, supported):
        rules = _rules_at(p, plat, for_version)
        if rules is not None and rules.engine == engine:
            return ".".join(map(str, p))
    # nothing in the range has the log's engine: the range's newest point, or the platform's default
    pts = _candidates(lo, end, supported)
    if pts:
        return ".".join(map(str, pts[0]))
    from ..rules.versions import default_version

    return default_version(plat)
