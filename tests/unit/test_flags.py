import pytest

from vramplan.errors import FlagError
from vramplan.engines.vllm.flags import parse_flags, parse_serve_line


def test_pasted_serve_line_of_seed_001():
    line = """VLLM_LOGGING_LEVEL=DEBUG VLLM_USE_V2_MODEL_RUNNER=0 vllm serve /root/.cache/modelscope/hub/models/Qwen/Qwen3-VL-8B-Instruct \\
      --tensor-parallel-size 2 \\
      --max-model-len 65536 \\
      --max-num-seqs 8 \\
      --max-num-batched-tokens 32768 \\
      --gpu-memory-utilization 0.95 \\
      --mm-processor-cache-gb 0 --port 8000 --served-model-name qwen"""
    p = parse_serve_line(line, environ={})
    a = p.args
    assert a.model.endswith("Qwen3-VL-8B-Instruct")
    assert (a.tensor_parallel_size, a.max_model_len, a.max_num_seqs, a.max_num_batched_tokens) == (2, 65536, 8, 32768)
    assert a.gpu_memory_utilization == 0.95 and a.mm_processor_cache_gb == 0
    assert set(p.ignored) == {"--port", "--served-model-name"}
    assert a.env_get("VLLM_USE_V2_MODEL_RUNNER") == "0"


@pytest.mark.parametrize("argv", [
    ["--max-model-len", "32768"], ["--max_model_len", "32768"], ["--max-model-len=32768"], ["--max-model-len", "32K"],
])
def test_spellings(argv):
    expected = 32768
    assert parse_flags(argv, environ={}).args.max_model_len == expected


def test_short_and_bool_flags():
    a = parse_flags(["-tp", "4", "-pp", "2", "--enforce-eager", "--no-enable-prefix-caching"], environ={}).args
    assert (a.tensor_parallel_size, a.pipeline_parallel_size, a.enforce_eager, a.enable_prefix_caching) == (4, 2, True, False)


def test_auto_max_model_len():
    assert parse_flags(["--max-model-len", "auto"], environ={}).args.max_model_len == -1
    assert parse_flags(["--max-model-len", "-1"], environ={}).args.max_model_len == -1


def test_json_and_dotted_options():
    a = parse_flags(["--limit-mm-per-prompt", '{"image": 2, "video": 0}', "--mm-processor-kwargs",
                     '{"max_pixels": 1003520}', "-cc.cudagraph_mode=PIECEWISE", "-O3"], environ={}).args
    assert a.limit_mm_per_prompt == {"image": 2, "video": 0}
    assert a.mm_processor_kwargs == {"max_pixels": 1003520}
    assert a.cudagraph_mode == "PIECEWISE"


def test_compilation_config_json():
    a = parse_flags(["--compilation-config", '{"cudagraph_mode": "FULL_DECODE_ONLY", "cudagraph_capture_sizes": [1, 2, 4]}'],
                    environ={}).args
    assert a.cudagraph_mode == "FULL_DECODE_ONLY" and a.cudagraph_capture_sizes == (1, 2, 4)


def test_typo_is_refused_with_a_suggestion():
    with pytest.raises(FlagError) as info:
        parse_flags(["--max-modle-len", "4096"], environ={})
    assert info.value.hint == "did you mean --max-model-len?"


@pytest.mark.parametrize("argv", [["--gpu-memory-utilization", "1.5"], ["--max-num-seqs", "0"], ["-tp", "0"],
                                  ["--max-model-len", "lots"], ["--limit-mm-per-prompt", "{bad"]])
def test_impossible_values(argv):
    with pytest.raises(FlagError):
        parse_flags(argv, environ={})


def test_memory_env_vars_from_environment():
    a = parse_flags([], environ={"VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS": "0", "HOME": "/x"}).args
    assert a.env == (("VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "0"),)
