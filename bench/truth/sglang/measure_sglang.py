#!/usr/bin/env python3
"""GPU side: one SGLang startup with dummy weights, its full log kept (issue 14).

usage (run_sglang.sh calls it):
  measure_sglang.py --name NAME --port P --logdir DIR --limit S -- --src DIR [--synth-tokenizer] [--env K=V ...]
                    [--est S] SGLANG_FLAGS...
The server is `python3 -m sglang.launch_server --model-path <copy of DIR> --load-format dummy --port P` plus the
flags (SGLang's own names). `--skip-tokenizer-init` is added unless a synthetic tokenizer is written. When the
server says "The server is fired up", one 8-token request is sent, NVML's used memory is read, and the server is
stopped. The log gets `SGTRUTH run {...}`, `SGTRUTH nvml {...}` and `SGTRUTH end {...}` lines for the converter.
"""
import argparse, json, os, shutil, signal, subprocess, sys, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def nvml_used():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.used,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=20).stdout
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)}
    cvd = [x for x in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if x.strip()]
    rows = [r.split(", ") for r in out.strip().splitlines()]
    rows = [r for r in rows if not cvd or r[0] in cvd]
    return {"gpus": [{"index": int(r[0]), "name": r[1], "used_mib": int(r[2]), "total_mib": int(r[3])} for r in rows]}


def main():
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, default=30000)
    ap.add_argument("--logdir", default="/tmp/sglogs")
    ap.add_argument("--limit", type=int, default=300)
    a = ap.parse_args(argv[:split])
    rest = argv[split + 1:]
    rp = argparse.ArgumentParser()
    rp.add_argument("--src", required=True)
    rp.add_argument("--synth-tokenizer", action="store_true")
    rp.add_argument("--env", action="append", default=[])
    rp.add_argument("--est", type=float, default=90)
    r, flags = rp.parse_known_args(rest)
    os.makedirs(a.logdir, exist_ok=True)
    log_path = os.path.join(a.logdir, a.name + ".log")
    mdir = f"/tmp/models/{a.name}"
    shutil.rmtree(mdir, ignore_errors=True)
    os.makedirs(mdir)
    for f in os.listdir(r.src):
        if f.endswith(".json") and f != "resolved.json":
            shutil.copy(os.path.join(r.src, f), mdir)
    if r.synth_tokenizer:
        # gpu_setup.sh copies .xfer/synth_tokenizer.py to bench/truth/; prepare.sh puts one in .sglang-bundle/
        sys.path[:0] = [HERE, os.path.dirname(HERE), os.path.join(os.getcwd(), ".xfer"),
                        os.path.join(os.getcwd(), ".sglang-bundle"), "/work/shared/vllm-on-gpu"]
        from synth_tokenizer import write_synthetic_tokenizer
        write_synthetic_tokenizer(mdir, json.load(open(os.path.join(mdir, "config.json"))))
    elif "--skip-tokenizer-init" not in flags:
        flags.append("--skip-tokenizer-init")
    env = dict(os.environ)
    run_env = dict(kv.split("=", 1) for kv in r.env)
    env.update(run_env)
    cmd = [sys.executable, "-m", "sglang.launch_server", "--model-path", mdir, "--load-format", "dummy",
           "--port", str(a.port), "--host", "127.0.0.1", "--log-level", "debug"] + flags
    try:  # the bundle's sglang (PYTHONPATH from run_sglang.sh); SGLang does not log its own version
        from importlib.metadata import version
        sglang_version = version("sglang")
    except Exception:  # noqa: BLE001
        sglang_version = None
    before = nvml_used()
    t0 = time.time()
    with open(log_path, "w") as log:
        log.write("SGTRUTH run " + json.dumps(dict(name=a.name, src=r.src, flags=flags, run_env=run_env, cmd=cmd,
                                                    sglang_version=sglang_version,
                                                    nvml_before=before,
                                                    env={k: v for k, v in sorted(env.items()) if k.startswith(
                                                        ("SGLANG_", "NCCL_", "CUDA_", "TORCH_", "PYTORCH_"))})) + "\n")
        log.flush()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        status, ready_s = "failed", None
        while time.time() - t0 < a.limit:
            time.sleep(1)
            if p.poll() is not None:
                break
            with open(log_path, errors="replace") as f:
                if "The server is fired up" in f.read():
                    status, ready_s = "ok", round(time.time() - t0, 1)
                    break
        else:
            status = "incomplete"
        gen = None
        if status == "ok":
            after_init = nvml_used()
            try:
                body = json.dumps({"input_ids": list(range(100, 164)),
                                   "sampling_params": {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True}})
                req = urllib.request.Request(f"http://127.0.0.1:{a.port}/generate", body.encode(),
                                             {"Content-Type": "application/json"})
                gen = json.loads(urllib.request.urlopen(req, timeout=120).read()).get("meta_info", {})
            except Exception as e:  # noqa: BLE001
                gen = {"error": str(e)}
            log.write("SGTRUTH nvml " + json.dumps(dict(after_init=after_init, after_gen=nvml_used(), gen=gen)) + "\n")
        rc = p.poll()
        if rc is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        log.write("SGTRUTH end " + json.dumps(dict(status=status, rc=rc, ready_s=ready_s,
                                                   wall_s=round(time.time() - t0, 1))) + "\n")
    # wait until the GPU is back at its level
    for _ in range(60):
        now = nvml_used().get("gpus", [])
        if all(g["used_mib"] <= b["used_mib"] + 64 for g, b in zip(now, before.get("gpus", []))):
            break
        time.sleep(1)
    print(f"{a.name}: {status} rc={rc} ready_s={ready_s} wall={time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
