"""Plan every line of run plans with vramplan BEFORE the runs (H100 and H200), so the figures the real startups are
compared with were written down first: python3 bench/truth/preregister.py PLAN.tsv... > predictions.json"""
import json, shlex, sys
sys.path.insert(0, '.')
import vramplan
from vramplan.api import load_model
from vramplan.engines.vllm.flags import EngineArgs
out = {}
for plan in sys.argv[1:]:
    for line in open(plan):
        if line.startswith('#') or not line.strip(): continue
        name, args = line.rstrip('\n').split('\t')
        a = shlex.split(args); kw = {}; env = []
        i = 0
        while i < len(a):
            t = a[i]
            if t == '--src': src = a[i+1]; i += 2
            elif t == '--eager': kw['enforce_eager'] = True; i += 1
            elif t == '--mnbt': kw['max_num_batched_tokens'] = int(a[i+1]); i += 2
            elif t == '--mns': kw['max_num_seqs'] = int(a[i+1]); i += 2
            elif t == '--gmu':
                if a[i+1] != 'unset': kw['gpu_memory_utilization'] = float(a[i+1])
                i += 2
            elif t == '--limit-mm': kw['limit_mm_per_prompt'] = json.loads(a[i+1]); i += 2
            elif t == '--extra':
                for k, v in json.loads(a[i+1]).items():
                    if k in EngineArgs.__dataclass_fields__: kw[k] = v
                i += 2
            elif t == '--env': env.append(tuple(a[i+1].split('=', 1))); i += 2
            else: i += 2
        if 'gpu_memory_utilization' not in kw and '--gmu' not in a: kw['gpu_memory_utilization'] = 0.9
        for dev in ('h100-80gb', 'h200'):
            try:
                p = vramplan.plan(load_model(src), device=dev, vllm_version='0.34.0',
                                  args=EngineArgs(max_model_len=4096, usage_context='llm', env=tuple(env), **kw))
                out[f'{name}@{dev}'] = dict(verdict=p.verdict, error_kind=p.error_kind, weights_gib=round(p.weights_bytes / 2**30, 3) if hasattr(p, 'weights_bytes') else None,
                                            blocks=p.num_gpu_blocks, tokens=p.kv_cache_tokens)
            except Exception as e:
                out[f'{name}@{dev}'] = dict(error=f'{type(e).__name__}: {e}')
json.dump(out, sys.stdout, indent=1)
