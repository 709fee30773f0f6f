#!/usr/bin/env python3
"""GPU side: start real vLLM (dummy weights) for one or more plan lines, one after
another in THIS process, and write one full log per run.

A variant of the bundle's measure.py (/work/shared/vllm-on-gpu/measure.py) that
- takes its runs from a plan file (`NAME<TAB>ARGS`, names picked with --names),
- accepts per-run environment variables (`--env K=V`, repeatable) and records them,
- reads NVML for the GPUs this process may use (CUDA_VISIBLE_DEVICES, PCI order),
  not always index 0,
- may run several startups in one Python process: each `LLM()` forks a fresh
  engine-core child (this parent never creates a CUDA context, so vLLM keeps the
  `fork` start method and the child starts with vllm already imported). The child
  is shut down, and the GPU memory must be back to its level before the run, before
  the next run starts. Each run's output (parent and child) goes to its own log
  file: fd 1 and 2 are redirected before `LLM()` forks.

usage (run_truth.sh calls it):
  measure_truth.py --plan PLAN.tsv --names a,b,c --logdir /tmp/vlogs [--deadline EPOCH]

Run ARGS (as measure.py, plus --env/--est/--proc):
  --src DIR  --eager  --max-model-len N  --gmu U|unset  --mnbt N  --mns N  --tokenizer synth
  --limit-mm JSON  --extra JSON  --env K=V  --est SECONDS  --proc TAG
"""
import argparse, gc, json, os, shlex, shutil, signal, sys, time, traceback

HERE = os.path.dirname(os.path.abspath(__file__))
VLLM_VERSION = "unknown"  # set in main() once vllm is imported; recorded in every TRUTH/RESULT line
ENV_PREFIXES = ("TRUTH_", "VLLM_", "NCCL_", "CUDA_", "TORCH_", "PYTORCH_", "NVSHMEM_", "HF_", "TRANSFORMERS_")


from plan_lines import read_plan, run_parser  # noqa: E402  (the plan-line format, shared with preregister.py)


# ---------- NVML (no CUDA context in this process) ----------
from vllm.third_party import pynvml  # noqa: E402  (imports vllm; the cost is paid once per process)

pynvml.nvmlInit()


def visible_nvml_indices():
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    n = pynvml.nvmlDeviceGetCount()
    if cvd is None or cvd.strip() == "":
        return list(range(n))
    # run_truth.sh sets CUDA_DEVICE_ORDER=PCI_BUS_ID, so CUDA index == NVML index
    return [int(x) for x in cvd.split(",") if x.strip() != ""]


def nvml_state():
    out = []
    for i in visible_nvml_indices():
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        m = pynvml.nvmlDeviceGetMemoryInfo(h)
        name = pynvml.nvmlDeviceGetName(h)
        if isinstance(name, bytes):
            name = name.decode()
        out.append(dict(index=i, name=name, total=m.total, used=m.used, free=m.free))
    return out


def gib(x):
    return x / 2**30


def wait_released(baseline_used, limit_s=60.0, slack=256 * 2**20):
    """Wait until every visible GPU is back to (about) its level before the run."""
    t0 = time.time()
    while True:
        st = nvml_state()
        if all(s["used"] <= b + slack for s, b in zip(st, baseline_used)):
            return True, time.time() - t0, st
        if time.time() - t0 > limit_s:
            return False, time.time() - t0, st
        time.sleep(0.5)


class RunTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise RunTimeout("run exceeded its time limit")


def redirect_to(path):
    sys.stdout.flush(); sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1); os.dup2(fd, 2); os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plan", required=True)
    ap.add_argument("--names", required=True)
    ap.add_argument("--logdir", default="/tmp/vlogs")
    ap.add_argument("--deadline", type=float, default=None, help="epoch seconds; no run starts after it")
    ap.add_argument("--proc-log", default=None, help="file for this process's own lines")
    a = ap.parse_args()
    plan = read_plan(a.plan)
    names = [n for n in a.names.split(",") if n]
    os.makedirs(a.logdir, exist_ok=True)
    proc_log = a.proc_log or os.path.join(a.logdir, f"_proc_{os.getpid()}.txt")
    saved_out, saved_err = os.dup(1), os.dup(2)

    def say(msg):
        with open(proc_log, "a") as f:
            f.write(msg + "\n")
        os.write(saved_out, (msg + "\n").encode())

    from vllm import LLM, SamplingParams
    global VLLM_VERSION
    import vllm
    VLLM_VERSION = getattr(vllm, "__version__", "unknown")
    from vllm.inputs import TokensPrompt
    if os.environ.get("TRUTH_ALLOC_PROBE", "1") != "0":  # allocator counters after the KV cache (alloc_probe.py)
        sys.path.insert(0, HERE)
        import alloc_probe
        say("alloc probe on: " + ",".join(alloc_probe.install()))
        import torch
        if torch.cuda.is_initialized():  # vLLM would then spawn the engine core, which does not inherit the probe
            say("alloc probe: CUDA got initialised in the parent; the engine core will be spawned without the probe")

    t_proc = time.time()
    for k, name in enumerate(names):
        r = run_parser().parse_args(shlex.split(plan[name]))
        left = (a.deadline - time.time()) if a.deadline else 1e9
        if left < r.est:
            say(f"SKIP {name} (only {left:.0f}s left, needs ~{r.est:.0f}s)")
            continue
        log = os.path.join(a.logdir, f"{name}.log")
        if os.path.exists(log):
            os.remove(log)
        before = nvml_state()
        redirect_to(log)
        t_start = time.time()
        run_env = dict(kv.split("=", 1) for kv in r.env)
        old_env = {key: os.environ.get(key) for key in run_env}
        os.environ.update(run_env)
        print("gpu used before: " + ", ".join(f"{s['used'] // 2**20} MiB" for s in before), flush=True)
        print("TRUTH run " + json.dumps(dict(name=name, args=plan[name], proc_pid=os.getpid(), vllm_version=VLLM_VERSION,
                                           proc_run_index=k, run_env=run_env,
                                           env={key: v for key, v in sorted(os.environ.items())
                                                if key.startswith(ENV_PREFIXES)})), flush=True)
        mdir = f"/tmp/models/{name}"
        shutil.rmtree(mdir, ignore_errors=True)
        os.makedirs(mdir)
        for f in os.listdir(r.src):
            if f.endswith(".json") and f != "resolved.json":
                shutil.copy(os.path.join(r.src, f), mdir)
        cfg = json.load(open(os.path.join(mdir, "config.json")))
        if r.tokenizer == "synth":
            sys.path[:0] = [HERE, os.path.join(os.getcwd(), ".vllm-bundle")]
            from synth_tokenizer import write_synthetic_tokenizer
            write_synthetic_tokenizer(mdir, cfg)
        kw = dict(model=mdir, load_format="dummy", max_model_len=r.max_model_len, enforce_eager=r.eager, seed=0)
        if r.gmu is not None:
            kw["gpu_memory_utilization"] = r.gmu
        kw["skip_tokenizer_init"] = r.tokenizer is None
        if r.mnbt: kw["max_num_batched_tokens"] = r.mnbt
        if r.mns: kw["max_num_seqs"] = r.mns
        if r.limit_mm: kw["limit_mm_per_prompt"] = json.loads(r.limit_mm)
        if r.extra: kw.update(json.loads(r.extra))
        print("LLM kwargs:", json.dumps(kw), flush=True)
        llm = None
        status, err = "ok", None
        limit = int(max(30, min(left - 5, max(90, 4 * r.est))))
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(limit)
        try:
            t0 = time.time()
            llm = LLM(**kw)
            t_init = time.time() - t0
            after_init = nvml_state()
            sp = SamplingParams(max_tokens=8, temperature=0.0, ignore_eos=True,
                                detokenize=r.tokenizer is not None)
            outs = llm.generate([TokensPrompt(prompt_token_ids=list(range(100, 164)))], sp)
            after_gen = nvml_state()
            ce = llm.llm_engine.vllm_config
            prim = 0
            res = dict(name=name, src=r.src, init_s=round(t_init, 1),
                       gen_tokens=len(outs[0].outputs[0].token_ids),
                       device_name=before[prim]["name"], num_visible_gpus=len(before),
                       total_gib=gib(before[prim]["total"]),
                       free_before_gib=gib(before[prim]["free"]),
                       used_before_gib=gib(before[prim]["used"]),
                       used_after_init_gib=gib(after_init[prim]["used"]),
                       used_after_gen_gib=gib(after_gen[prim]["used"]),
                       per_gpu_used_before_gib=[gib(s["used"]) for s in before],
                       per_gpu_used_after_init_gib=[gib(s["used"]) for s in after_init],
                       per_gpu_used_after_gen_gib=[gib(s["used"]) for s in after_gen],
                       max_num_batched_tokens=ce.scheduler_config.max_num_batched_tokens,
                       max_num_seqs=ce.scheduler_config.max_num_seqs,
                       max_model_len=ce.model_config.max_model_len,
                       num_gpu_blocks=ce.cache_config.num_gpu_blocks,
                       block_size=ce.cache_config.block_size,
                       kv_cache_dtype=str(ce.cache_config.cache_dtype),
                       tensor_parallel_size=ce.parallel_config.tensor_parallel_size,
                       pipeline_parallel_size=ce.parallel_config.pipeline_parallel_size,
                       data_parallel_size=ce.parallel_config.data_parallel_size,
                       enable_expert_parallel=bool(getattr(ce.parallel_config, "enable_expert_parallel", False)),
                       vllm_version=VLLM_VERSION,
                       cudagraph_mode=str(ce.compilation_config.cudagraph_mode),
                       compilation_mode=str(ce.compilation_config.mode),
                       cudagraph_capture_sizes_max=max(ce.compilation_config.cudagraph_capture_sizes or [0]),
                       num_cudagraph_capture_sizes=len(ce.compilation_config.cudagraph_capture_sizes or []),
                       proc_run_index=k, run_env=run_env, kwargs=kw)
            print("RESULT " + json.dumps(res), flush=True)
        except BaseException as e:  # noqa: BLE001 - record every failure, then go on
            status, err = "failed", f"{type(e).__name__}: {e}"
            traceback.print_exc()
            print("TRUTH-FAILED " + json.dumps(dict(name=name, error=err[:2000])), flush=True)
        finally:
            signal.alarm(0)
        try:
            if llm is not None:
                llm.llm_engine.engine_core.shutdown()
        except BaseException as e:  # noqa: BLE001
            print(f"TRUTH shutdown error: {type(e).__name__}: {e}", flush=True)
        del llm
        gc.collect()
        ok, waited, st = wait_released([s["used"] for s in before])
        print(f"TRUTH released={ok} after {waited:.1f}s: used " +
              ", ".join(f"{s['used'] // 2**20} MiB" for s in st), flush=True)
        print(f"TRUTH wall_s={time.time() - t_start:.1f} status={status}", flush=True)
        for key, v in old_env.items():
            if v is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = v
        os.dup2(saved_out, 1); os.dup2(saved_err, 2)
        say(f"   {name}: {status} in {time.time() - t_start:.1f}s (proc run {k}, proc age "
            f"{time.time() - t_proc:.0f}s){'' if err is None else ' ' + err[:300]}")
        if not ok:
            say(f"GPU memory not released after {name}; ending this process")
            sys.exit(3)
    sys.exit(0)


if __name__ == "__main__":
    main()
