#!/usr/bin/env python3
"""Check the SGLang bundle on a machine without a GPU, before spending device minutes on it (issue 14).

usage, from the project root, with a Python 3.12 that has torch 2.11 and the image's other packages:
  PYTHONPATH=/tmp/sglang-prep/site python3 bench/truth/sglang/check_on_cpu.py [--walk]

torch.cuda is made to report one H100 and sgl_kernel is stubbed (its libraries need libcuda.so.1), so that SGLang's
CUDA-only imports run. Then: the modules the runs import; every plan line of ../plans/sglang_g*.tsv through SGLang's
own parser, ServerArgs (its defaults resolved against the pretended 80 GB) and ModelConfig to the model class. --walk
also imports every module under sglang.srt and sglang.kernels and names the missing packages. A ModuleNotFoundError
for a pure-Python package means DEPS in prepare.sh lacks it. Nothing here runs a kernel: the GPU start is the test.
"""
import argparse, collections, glob, importlib, importlib.abc, importlib.machinery, json, os, shlex, shutil, sys, types

MODULES = """sglang sglang.srt.server_args sglang.srt.entrypoints.engine sglang.srt.entrypoints.http_server
sglang.launch_server sglang.srt.managers.scheduler sglang.srt.managers.tokenizer_manager
sglang.srt.managers.detokenizer_manager sglang.srt.model_executor.model_runner
sglang.srt.model_executor.model_runner_components.cuda_graph_setup sglang.srt.model_loader.loader
sglang.srt.layers.attention.triton_backend sglang.srt.layers.sampler sglang.srt.mem_cache.memory_pool
sglang.srt.models.qwen3 sglang.srt.models.qwen3_moe sglang.srt.models.llama sglang.srt.models.deepseek_v2
sglang.srt.models.qwen2_5_vl sglang.srt.models.qwen3_vl sglang.srt.layers.attention.vision
sglang.srt.layers.moe.fused_moe_triton.layer""".split()


def pretend_h100():
    import torch
    c = torch.cuda
    c.is_available = lambda: True
    c.device_count = lambda: 1
    c.current_device = lambda: 0
    c.get_device_capability = lambda *a, **k: (9, 0)
    c.get_device_name = lambda *a, **k: "NVIDIA H100 80GB HBM3"
    c.get_device_properties = lambda *a, **k: types.SimpleNamespace(
        name="NVIDIA H100 80GB HBM3", major=9, minor=0, total_memory=85520809984, multi_processor_count=132,
        L2_cache_size=52428800, warp_size=32, gcnArchName="", uuid="x")
    c.mem_get_info = lambda *a, **k: (84e9, 85520809984)

    class Any:
        def __init__(self, *a, **k): pass
        def __call__(self, *a, **k): return Any()
        def __getattr__(self, n): return Any()
        def __iter__(self): return iter(())
        def __bool__(self): return False
        def __mro_entries__(self, bases): return (object,)

    class Stub(types.ModuleType):
        __path__ = []
        def __getattr__(self, n):
            if n.startswith("__"):
                raise AttributeError(n)
            return Any()

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name == "sgl_kernel" or name.startswith("sgl_kernel."):
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
        def create_module(self, spec): return Stub(spec.name)
        def exec_module(self, m): m.__version__ = "stub"
    sys.meta_path.insert(0, Finder())


def try_import(names):
    missing, other = collections.defaultdict(list), []
    for n in names:
        try:
            importlib.import_module(n)
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, ModuleNotFoundError) and not (e.name or "").startswith("sglang"):
                missing[e.name].append(n)
            else:
                other.append(f"{n}: {type(e).__name__} {(str(e).splitlines() or [''])[0][:160]}")
    return missing, other


def plan_lines():
    for plan in sorted(glob.glob("bench/truth/plans/sglang_g*.tsv")):
        for line in open(plan):
            if line.strip() and not line.startswith("#"):
                name, args = line.rstrip("\n").split("\t", 1)
                yield name, shlex.split(args)


def check_plans(tmp):
    import argparse as ap
    from sglang.srt.configs.model_config import ModelConfig
    from sglang.srt.model_loader.utils import get_model_architecture
    from sglang.srt.server_args import ServerArgs
    parser = ap.ArgumentParser()
    ServerArgs.add_cli_args(parser)
    bad = 0
    for name, toks in plan_lines():
        flags, src, i = [], None, 0
        while i < len(toks):
            if toks[i] == "--src":
                src = toks[i + 1]
            if toks[i] in ("--src", "--est", "--env"):
                i += 2
                continue
            if toks[i] != "--synth-tokenizer":
                flags.append(toks[i])
            i += 1
        mdir = os.path.join(tmp, name)
        shutil.rmtree(mdir, ignore_errors=True)
        os.makedirs(mdir)
        for f in os.listdir(src):
            if f.endswith(".json") and f != "resolved.json":
                shutil.copy(os.path.join(src, f), mdir)
        # no tokenizer is needed to resolve the arguments (measure_sglang.py writes the synthetic one on the GPU)
        cmd = ["--model-path", mdir, "--load-format", "dummy", "--port", "30000", "--log-level", "debug",
               "--skip-tokenizer-init"] + flags
        try:
            sa = ServerArgs.from_cli_args(parser.parse_args(cmd))
            cls, _ = get_model_architecture(ModelConfig.from_server_args(sa))
            print(f"plan {name}: ok, {cls.__name__}, mem_fraction_static={sa.mem_fraction_static} (of a pretended "
                  f"80 GB), attention={sa.attention_backend}, sampling={sa.sampling_backend}")
        except BaseException as e:  # noqa: BLE001
            bad += 1
            print(f"plan {name}: FAILS {type(e).__name__}: {str(e)[:300]}")
    return bad


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--walk", action="store_true")
    a.add_argument("--tmp", default="/tmp/sgcheck-models")
    args = a.parse_args()
    pretend_h100()
    missing, other = try_import(MODULES)
    print(f"imports: {len(MODULES)} tried, missing packages {dict(missing) or 'none'}")
    for o in other:
        print("  other:", o)
    bad = check_plans(args.tmp) if not missing else -1
    if args.walk:
        import sglang
        root = os.path.dirname(os.path.dirname(sglang.__file__))
        skip = ("test", "npu", "hip", "musa", "xpu", "mlx", "ascend", "amx", "rocm", "hpu", "mps", "metal", "aiter",
                "debug_utils", "__main__", "ray")
        names = set()
        for base in ("sglang/srt", "sglang/kernels"):
            for dp, _, fn in os.walk(os.path.join(root, base)):
                for f in fn:
                    if f.endswith(".py"):
                        mod = os.path.relpath(os.path.join(dp, f), root)[:-3].replace("/", ".").removesuffix(".__init__")
                        if not any(s in mod.split(".")[-1] or s in mod.split(".") for s in skip):
                            names.add(mod)
        wm, wo = try_import(sorted(names))
        print(f"walk: {len(names)} modules; packages missing (features these runs do not use, unless named above):")
        for k, v in sorted(wm.items(), key=lambda kv: -len(kv[1])):
            print(f"  {k}: {len(v)}, e.g. {v[0]}")
        print(f"  other failures: {len(wo)}")
    sys.exit(1 if missing or bad else 0)


if __name__ == "__main__":
    main()
