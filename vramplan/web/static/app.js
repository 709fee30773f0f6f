// vramplan's page: a form, five tabs, and nothing but the JSON API (/api/*) behind them.
// The state lives in the URL's query string, so a link reproduces the plan.
"use strict";

const $ = (id) => document.getElementById(id);
const FORM_KEYS = ["model", "engine", "vllm_version", "device", "device_memory_gib", "used_by_others_gib",
  "max_model_len", "gpu_memory_utilization", "tensor_parallel_size", "max_num_seqs", "kv_cache_dtype",
  "enforce_eager", "extra", "line", "image", "images_per_request", "video"];
const TAB_KEYS = ["sweep_flag", "sweep_range", "sweep_steps", "knobs_concurrency", "knobs_context",
  "fit_concurrency", "fit_context", "fit_images", "fit_image", "fit_budget"];
const ARG_KEYS = ["max_model_len", "gpu_memory_utilization", "tensor_parallel_size", "max_num_seqs", "kv_cache_dtype"];
const LOG_LIMIT = 8 * 1024 * 1024;
// with engine sglang the same fields are SGLang's flags (its names, sent as args by SGLang's names)
const SGLANG_ARGS = { max_model_len: "context_length", gpu_memory_utilization: "mem_fraction_static",
  tensor_parallel_size: "tp_size", max_num_seqs: "max_running_requests", kv_cache_dtype: "kv_cache_dtype" };
const ENGINE_NAMES = { vllm: "vLLM", sglang: "SGLang" };
const engineName = (p) => ENGINE_NAMES[p.engine_name] || "vLLM";
const state = { tab: "plan", config: null, configName: null, catalog: null, seq: {}, lastPlan: null };

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (v, nd = 2) => v === null || v === undefined ? "–" : (typeof v === "number" ?
  (Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { minimumFractionDigits: nd, maximumFractionDigits: nd })) : String(v));
const wrap = (s, n = 64) => String(s || "").replace(new RegExp(`(.{1,${n}})(\\s|$)`, "g"), "$1<br>");

// ----- API ---------------------------------------------------------------------------------------

async function api(path, body) {
  const seq = (state.seq[path] = (state.seq[path] || 0) + 1);
  const r = await fetch(path, { method: body === undefined ? "GET" : "POST",
    headers: { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  let obj;
  try { obj = await r.json(); } catch (e) { obj = { error: `HTTP ${r.status}` }; }
  if (seq !== state.seq[path]) return null; // a newer request of this kind is on its way
  if (!r.ok) throw new Error(obj.error || `HTTP ${r.status}`);
  return obj;
}

function showError(msg) {
  const e = $("error");
  e.hidden = !msg;
  e.textContent = msg || "";
}

// ----- the request every tab shares --------------------------------------------------------------

function target() {
  const v = (k) => ($(k).type === "checkbox" ? $(k).checked : $(k).value.trim());
  const req = { engine: v("engine") || "vllm" };
  const line = v("line");
  const model = v("model");
  const lineModel = /(?:^|\s)serve\s+([^\s-]\S*)/.exec(line) || /(?:^|\s)--model(?:-path)?[=\s]+\S/.exec(line);
  const sgl = req.engine === "sglang";
  if (state.config) req.config = state.config;
  if (model && !lineModel && !state.config) req.model = model;
  if (state.config && model) req.model = model;
  for (const k of ["device", "device_memory_gib", "used_by_others_gib"]) if (v(k)) req[k] = v(k);
  if (v("vllm_version")) req[sgl ? "sglang_version" : "vllm_version"] = v("vllm_version"); // the release select
  const flags = [line, v("extra")].filter(Boolean).join(" ");
  if (flags) req.flags = flags;
  const args = {};
  for (const k of ARG_KEYS) if (v(k)) args[sgl ? SGLANG_ARGS[k] : k] = sgl && k === "kv_cache_dtype" && v(k) === "fp8" ? "fp8_e4m3" : v(k);
  if (v("enforce_eager")) args[sgl ? "disable_cuda_graph" : "enforce_eager"] = true;
  if (Object.keys(args).length) req.args = args;
  return req;
}

function saveUrl() {
  const q = new URLSearchParams();
  for (const k of FORM_KEYS.concat(TAB_KEYS)) {
    const el = $(k);
    const val = el.type === "checkbox" ? (el.checked ? "1" : "") : el.value.trim();
    if (val && !(k === "engine" && val === "vllm")) q.set(k, val);
  }
  if (state.tab !== "plan") q.set("tab", state.tab);
  history.replaceState(null, "", q.toString() ? `?${q}` : location.pathname);
}

function defaultRelease(engine) {
  // the release planned when none is picked: per platform for vLLM (the device's)
  const c = state.catalog, rel = c.releases[engine] || c.releases.vllm;
  const dev = c.devices.find((d) => d.name === ($("device").value || "h100-80gb"));
  return (rel.default_by_platform && dev && rel.default_by_platform[dev.platform]) || rel.default;
}

function setEngine(engine) {
  // the release list, the flags' names and the sweepable flags are the engine's
  const c = state.catalog, rel = c.releases[engine] || c.releases.vllm, sel = $("vllm_version"), cur = sel.value;
  sel.innerHTML = `<option value="">${esc(defaultRelease(engine))}</option>` +
    rel.versions.filter((v) => v !== rel.default).map((v) => `<option>${esc(v)}</option>`).join("");
  if (rel.versions.includes(cur)) sel.value = cur;
  const sgl = engine === "sglang";
  for (const e of document.querySelectorAll("[data-sglang]")) e.textContent = sgl ? e.dataset.sglang : e.dataset.vllm;
  for (const e of document.querySelectorAll("[data-ph-sglang]")) e.placeholder = sgl ? e.dataset.phSglang : e.dataset.phVllm;
  $("servingset").hidden = sgl;
  const flag = $("sweep_flag").value, flags = c.sweepable_by_engine[engine] || c.sweepable;
  $("sweep_flag").innerHTML = flags.map((f) => `<option>${esc(f)}</option>`).join("");
  if (flags.includes(flag)) $("sweep_flag").value = flag;
  else $("sweep_range").value = "";
}

function loadUrl() {
  const q = new URLSearchParams(location.search);
  if (q.has("engine") && state.catalog.engines.includes(q.get("engine"))) { $("engine").value = q.get("engine"); setEngine(q.get("engine")); }
  for (const k of FORM_KEYS.concat(TAB_KEYS)) {
    if (!q.has(k)) continue;
    const el = $(k);
    if (el.type === "checkbox") el.checked = q.get(k) === "1";
    else {
      if (el.tagName === "SELECT" && ![...el.options].some((o) => o.value === q.get(k))) el.add(new Option(q.get(k)));
      el.value = q.get(k);
    }
  }
  if (!q.has("model") && !q.has("line")) $("model").value = "Qwen/Qwen3-8B";
  selectTab(q.get("tab") || "plan", false);
}

// ----- plan --------------------------------------------------------------------------------------

const SEGMENT_COLORS = { weights: "#3b6fd8", activation_peak: "#e08a1e", non_torch: "#8e5cc8", cudagraph_estimate: "#d24e8f",
  encoder_cache: "#2aa1a1", kv_cache: "#2e9d52", held_back: "#c9ced6", others: "#7b8794", context: "#9aa3ad",
  graphs_after: "#e6a3c6", warmup: "#f2c98f", headroom: "#c9ced6",
  cudagraph_decode: "#d24e8f", cudagraph_prefill: "#e6a3c6", req_to_token: "#2aa1a1", non_torch_increase: "#b59bd9" };
const PALETTE = ["#5aa0a0", "#a0785a", "#6a8e3a", "#b0a030", "#4a5fa0"];

function segmentsOfSGLang(plan) {
  // SGLang: the context, the weights, the KV pool and the request table, then what the fraction leaves after the
  // pool, split into what startup still takes from it (workspaces, graphs, the prefill peak) and what stays free
  const t = plan.terms, inside = ["non_torch_increase", "cudagraph_decode", "cudagraph_prefill", "activation_peak"];
  const segs = [], seg = (key, tm, gib) => segs.push({ key, label: tm.label, gib: Math.max(gib ?? tm.gib ?? 0, 0),
    rule: tm.rule, kind: tm.kind, note: tm.note });
  for (const [k, tm] of Object.entries(t)) if (k !== "headroom" && !inside.includes(k)) seg(k, tm);
  const others = plan.memory_gib.used_by_others || 0;
  if (others > 0) segs.push({ key: "others", label: "held by other programs", gib: others, rule: "given (--used-by-others-gib)", kind: "given" });
  let left = t.headroom ? t.headroom.gib : 0;
  for (const k of inside) if (t[k]) { seg(k, t[k]); left -= t[k].gib || 0; }
  if (t.headroom) seg("headroom", { ...t.headroom, label: "still free after startup (what the fraction leaves, less the above)",
    rule: `${t.headroom.rule}; less the terms taken from it after the pool` }, left);
  return plan.ranks.map((r) => ({ name: r.name, segs }));
}

// vLLM 0.34's extensible KV cache: the device after the commit. The profile-time terms (activation peak, non-KV
// total, reserved bound, first KV estimate) describe the reservation, not memory in use, so they are not stacked.
const EXT_STACK = ["weights", "non_torch", "cudagraph_pool", "warmup_transient_peak", "kv_margin", "kv_committed"];
function segmentsExtensible(r, total, others) {
  const segs = [];
  for (const key of EXT_STACK) {
    const t = r.terms[key];
    if (t && (t.gib || 0) > 0.005) segs.push({ key, label: t.label, gib: t.gib, rule: t.rule, kind: t.kind, note: t.note });
  }
  const ctx = total - others - (r.free_at_init_gib || 0);
  if (ctx > 0.005) segs.push({ key: "context", label: "in use before vLLM's memory snapshot (runtime context)", gib: ctx,
    rule: "device total − other programs − free at startup", kind: "derived" });
  if (others > 0) segs.push({ key: "others", label: "held by other programs", gib: others, rule: "given (--used-by-others-gib)", kind: "given" });
  const rest = total - segs.reduce((a, x) => a + x.gib, 0);
  if (rest > 0.005) segs.push({ key: "free_after_commit", label: "free after the KV commit", gib: rest,
    rule: "device total − everything above (vLLM 0.34 extensible_kv_cache.py: measure_kv_cache_blocks keeps the margin and the transient free)",
    kind: "derived" });
  return segs;
}

function segmentsOf(plan) {
  if (plan.engine_name === "sglang") return segmentsOfSGLang(plan);
  // per rank: every term but the non-KV total (it is their sum), then what the util holds back and other programs
  const total = plan.device.total_gib, others = plan.memory_gib.used_by_others || 0;
  return plan.ranks.map((r) => {
    const segs = [];
    if (r.terms.reserved_bound) return { name: r.name, segs: segmentsExtensible(r, total, others) };
    for (const [key, t] of Object.entries(r.terms)) {
      if (key === "non_kv_total") continue;
      segs.push({ key, label: t.label, gib: Math.max(t.gib || 0, 0), rule: t.rule, kind: t.kind, note: t.note });
    }
    const requested = r.memory_gib.requested || 0;
    if (others > 0) segs.push({ key: "others", label: "held by other programs", gib: others, rule: "given (--used-by-others-gib)", kind: "given" });
    const held = total - requested - others;
    const h = plan.headroom_gib || {};
    if (h.outside_budget !== undefined && held > 0.005) {
      // what the util holds back, split as the planner's headroom terms do (figures of the logged rank)
      const before = held - h.outside_budget, warm = Math.max(h.sampler_warmup || 0, 0);
      const graphs = Math.max(h.outside_budget - warm - h.headroom_left, 0);
      const parts = [
        ["context", "in use before vLLM's memory snapshot (runtime context)", before,
          "device total − other programs − requested − what is left outside the budget"],
        ["graphs_after", "CUDA graphs captured after the KV cache (beyond any estimate)", graphs,
          "vLLM compile_or_warm_up_model → capture_model; outside_budget − warm-up − headroom left"],
        ["warmup", "warm-up beyond the profile peak", warm,
          "vLLM compile_or_warm_up_model (model + sampler warm-up), measured fit over data/truth"],
        ["headroom", "headroom left (what the util holds back, still free)", Math.max(h.headroom_left, 0),
          "outside_budget − graphs beyond their estimate − warm-up beyond the profile peak"]];
      for (const [key, label, gib, rule] of parts) if (gib > 0.005) segs.push({ key, label, gib, rule, kind: "derived" });
    } else if (held > 0.005) segs.push({ key: "held_back", label: "not requested (what --gpu-memory-utilization holds back)", gib: held,
      rule: "device total − requested − other programs; requested = the util's share, as vLLM's worker computes it", kind: "derived" });
    return { name: r.name, segs };
  });
}

function drawBar(el, ranks, title) {
  if (!window.Plotly) return;
  const keys = [];
  for (const r of ranks) for (const s of r.segs) if (!keys.includes(s.key)) keys.push(s.key);
  const names = ranks.map((r) => r.name);
  let extra = 0;
  const traces = keys.map((key) => {
    const per = ranks.map((r) => r.segs.find((s) => s.key === key));
    const first = per.find(Boolean);
    return { type: "bar", orientation: "h", name: first.label, y: names, x: per.map((s) => (s ? s.gib : 0)),
      marker: { color: SEGMENT_COLORS[key] || PALETTE[extra++ % PALETTE.length] },
      customdata: per.map((s) => (s ? `${wrap(s.rule)}${s.note ? "<i>" + wrap(s.note) + "</i>" : ""}(${s.kind})` : "")),
      hovertemplate: `<b>${esc(first.label)}</b>: %{x:.2f} GiB<br>%{customdata}<extra>%{y}</extra>` };
  });
  const narrow = el.clientWidth < 560;
  const height = (narrow ? 250 : 200) + 34 * ranks.length;
  Plotly.react(el, traces, {
    barmode: "stack", title: { text: title, font: { size: 13 }, x: 0, xanchor: "left" },
    xaxis: { rangemode: "tozero", ticksuffix: " GiB", automargin: true }, yaxis: { automargin: true, autorange: "reversed" },
    legend: { orientation: "h", y: -30 / (height * 0.45), yanchor: "top", traceorder: "normal", font: { size: 11 } }, margin: { l: 10, r: 10, t: 30, b: 10 },
    height, hoverlabel: { align: "left" },
  }, { displayModeBar: false, responsive: true });
}

function verdictHtml(p) {
  const ok = p.verdict === "starts", eng = engineName(p);
  let h = `<h2>${ok ? `${eng} starts` : `${eng} does not start`}</h2>`;
  if (!ok && p.error_message) h += `<div>${eng}'s words${p.error_kind ? ` (${esc(p.error_kind)})` : ""}:</div><blockquote>${esc(p.error_message)}</blockquote>`;
  if (p.fix) h += `<div class="fix">Fix: ${esc(p.fix)}</div>`;
  return h;
}

function renderPlan(p) {
  state.lastPlan = p;
  const v = $("verdict");
  v.className = `verdict ${p.verdict}`;
  v.innerHTML = verdictHtml(p) + `<div class="note">${esc(p.model)} · ${esc(p.device.label)} × ${p.device.count} ` +
    `(${fmt(p.device.total_gib)} GiB each) · ` + (p.engine_name === "sglang" ? `SGLang ${esc(p.engine_version)} rules` :
    `vLLM ${esc(p.vllm_version)} rules${p.rules_version !== p.vllm_version ? " " + esc(p.rules_version) : ""}`) +
    ` · tp ${p.tp} pp ${p.pp}</div>`;
  const figs = [["KV cache tokens", p.kv_cache_tokens, "kv_cache_tokens"],
    [`max concurrency at ${fmt(p.max_model_len)} tokens`, p.max_concurrency, "max_concurrency"],
    p.engine_name === "sglang" ? ["max running requests", p.max_running_requests, "max_running_requests"] :
      ["KV blocks", p.num_gpu_blocks, "num_gpu_blocks"], ["KV cache GiB", p.memory_gib.kv_cache, "kv_cache"],
    ["non-KV GiB", p.memory_gib.non_kv_total, "non_kv_total"], ["requested GiB", p.memory_gib.requested, "requested"]];
  if (p.verdict !== "starts" && p.estimated_max_model_len) figs.push(["longest max-model-len that fits", p.estimated_max_model_len, "estimated_max_model_len"]);
  $("figures").innerHTML = figs.map(([k, val, id]) => `<div class="fig" data-key="${id}"><div class="v">${fmt(val)}</div><div class="k">${esc(k)}</div></div>`).join("");
  drawBar($("bar"), segmentsOf(p), "Memory per device (stacked; hover for the rule)");
  const r0 = { terms: p.ranks[0].terms || p.terms };
  let rows = `<tr><th>term</th><th class="num">GiB</th><th>kind</th><th class="rule">rule</th></tr>`;
  for (const [key, t] of Object.entries(r0.terms)) {
    rows += `<tr data-key="${esc(key)}" title="${esc(t.rule)}"><td>${esc(t.label)}</td><td class="num">${fmt(t.gib)}</td>` +
      `<td>${esc(t.kind)}</td><td class="rule">${esc(t.rule)}${t.note ? " · " + esc(t.note) : ""}</td></tr>`;
  }
  $("terms").innerHTML = rows;
  let after = "";
  const head = Object.entries(p.headroom_gib || {}), host = Object.entries(p.host_memory_gib || {});
  if (head.length) after += `<h3>Allocated after the KV cache (must fit the room left)</h3><ul>${head.map(([k, g]) => `<li>${esc(k.replace(/_/g, " "))}: ${fmt(g)} GiB</li>`).join("")}</ul>`;
  if (host.length) after += `<h3>Host (CPU) memory</h3><ul>${host.map(([k, g]) => `<li>${esc(k.replace(/_/g, " "))}: ${fmt(g)} GiB</li>`).join("")}</ul>`;
  $("after").innerHTML = after;
  $("loglines").textContent = (p.log_lines || []).join("\n");
  const w = (p.warnings || []).map((x) => `<li>${esc(x)}</li>`).join("") +
    ((p.ignored_flags || []).length ? `<li>accepted, no effect on memory: ${esc(p.ignored_flags.join(" "))}</li>` : "");
  $("warnings").innerHTML = w ? `<h3>Warnings</h3><ul class="warn">${w}</ul>` : "";
}

const SERVING_LABELS = { request_encoder_peak: "encoder peak of the request", request_embeddings: "embeddings held until the LM consumes them",
  room_in_budget: "room the profile peak reserved in the budget", room_outside: "free outside the budget after graphs and warm-up" };

function renderServing(s) {
  if (!s) { $("serving").innerHTML = ""; return; }
  $("serving").innerHTML = `<div class="verdict ${s.fits ? "starts" : "fails"}" id="servingbox"><b>Serving check: ${esc(s.verdict)}</b><ul>` +
    Object.entries(s.gib).map(([k, g]) => `<li>${esc(SERVING_LABELS[k] || k.replace(/_/g, " "))}: ${fmt(g)} GiB</li>`).join("") + "</ul></div>";
}

async function runPlan() {
  const req = target();
  if (req.engine !== "sglang") for (const k of ["image", "video"]) if ($(k).value.trim()) req[k] = $(k).value.trim();
  if (req.image || req.video) req.images_per_request = Number($("images_per_request").value.trim() || 1);
  try {
    const p = await api("/api/plan", req);
    if (!p) return;
    showError("");
    renderPlan(p);
    renderServing(p.serving);
  } catch (e) {
    showError(e.message);
  }
}

// ----- sweep -------------------------------------------------------------------------------------

function defaultRange(flag) {
  const mml = state.lastPlan ? state.lastPlan.max_model_len : 32768;
  return ({ "max-model-len": `2048:${mml}`, "max-num-seqs": "16:1024", "max-num-batched-tokens": "2048:65536",
    "gpu-memory-utilization": "0.3:0.95", "tensor-parallel-size": "1,2,4,8", "pipeline-parallel-size": "1,2,4",
    "block-size": "16,32,64,128", "kv-cache-dtype": "auto,fp8", "used-by-others-gib": "0:40",
    "mem-fraction-static": "0.5:0.95", "context-length": `2048:${mml}`, "chunked-prefill-size": "1024,2048,4096,8192,16384",
    "cuda-graph-max-bs-decode": "8,16,32,64,128,256", "cuda-graph-max-bs": "8,16,32,64,128,256",
    "max-running-requests": "16,64,256,1024,4096", "max-total-tokens": "50000:400000", "tp-size": "1,2,4,8" })[flag] || "";
}

async function runSweep() {
  const flag = $("sweep_flag").value;
  if (!$("sweep_range").value.trim()) $("sweep_range").value = defaultRange(flag);
  const req = { ...target(), vary: `${flag}=${$("sweep_range").value.trim()}`, steps: Number($("sweep_steps").value) || 12 };
  saveUrl();
  try {
    const s = await api("/api/sweep", req);
    if (!s) return;
    showError("");
    const x = s.rows.map((r) => r.value), numeric = x.every((v) => typeof v === "number");
    const shapes = [];
    s.rows.forEach((r, i) => {
      if (r.verdict === "starts") return;
      if (!numeric) { shapes.push({ type: "rect", xref: "x", yref: "paper", x0: i - 0.5, x1: i + 0.5, y0: 0, y1: 1, fillcolor: "#b3261e", opacity: 0.12, line: { width: 0 } }); return; }
      const lo = i > 0 ? Math.sqrt(x[i - 1] * x[i]) : x[i], hi = i < x.length - 1 ? Math.sqrt(x[i] * x[i + 1]) : x[i];
      shapes.push({ type: "rect", xref: "x", yref: "paper", x0: lo, x1: hi, y0: 0, y1: 1, fillcolor: "#b3261e", opacity: 0.12, line: { width: 0 } });
    });
    const xs = numeric ? x : x.map(String);
    const traces = [
      { x: xs, y: s.rows.map((r) => r.kv_cache_tokens), name: "KV cache tokens", mode: "lines+markers", line: { color: "#2e9d52" },
        text: s.rows.map((r) => r.verdict === "starts" ? "starts" : `fails: ${r.error_kind}`), hovertemplate: "%{x}: %{y:,} tokens<br>%{text}<extra></extra>" },
      { x: xs, y: s.rows.map((r) => r.max_concurrency), name: "max concurrency (requests at max-model-len)", yaxis: "y2",
        mode: "lines+markers", line: { color: "#3b6fd8", dash: "dot" }, hovertemplate: "%{x}: %{y:.2f} requests at once<extra></extra>" }];
    const geometric = numeric && x.length > 2 && Number.isInteger(x[0]) && x[x.length - 1] / x[0] > 16;
    if (window.Plotly) Plotly.react($("sweepchart"), traces, {
      title: { text: `--${s.flag}: failing region shaded`, font: { size: 13 }, x: 0, xanchor: "left" }, shapes,
      xaxis: { type: numeric ? (geometric ? "log" : "linear") : "category" },
      yaxis: { title: { text: "KV tokens" }, rangemode: "tozero", automargin: true },
      yaxis2: { title: { text: "requests" }, overlaying: "y", side: "right", rangemode: "tozero", automargin: true },
      legend: { orientation: "h", y: -0.2, yanchor: "top" }, margin: { l: 10, r: 10, t: 30, b: 10 }, height: 340 },
      { displayModeBar: false, responsive: true });
    const sgl = s.engine_name === "sglang", third = sgl ? "mem_fraction_static" : "non_kv_gib";
    $("sweeptable").innerHTML = `<tr><th>--${esc(s.flag)}</th><th>verdict</th><th class="num wide">${sgl ? "fraction" : "non-KV GiB"}</th><th class="num">KV GiB</th><th class="num">KV tokens</th><th class="num">concurrency</th></tr>` +
      s.rows.map((r) => `<tr class="${r.verdict}"><td>${esc(r.value)}</td><td>${esc(r.verdict)}${r.error_kind ? " (" + esc(r.error_kind) + ")" : ""}</td>` +
        `<td class="num wide">${fmt(r[third], sgl ? 3 : 2)}</td><td class="num">${fmt(r.kv_cache_gib)}</td><td class="num">${fmt(r.kv_cache_tokens)}</td><td class="num">${fmt(r.max_concurrency)}</td></tr>`).join("");
  } catch (e) { showError(e.message); }
}

// ----- knobs -------------------------------------------------------------------------------------

async function runKnobs() {
  const req = target();
  if ($("knobs_concurrency").value.trim()) req.concurrency = Number($("knobs_concurrency").value);
  if ($("knobs_context").value.trim()) req.context = Number($("knobs_context").value);
  saveUrl();
  try {
    const k = await api("/api/knobs", req);
    if (!k) return;
    showError("");
    if (k.engine_name === "sglang") { renderKnobsSGLang(k); return; }
    $("knobsbase").textContent = `baseline: ${k.baseline.verdict}, ${fmt(k.baseline.kv_cache_tokens)} KV tokens, non-KV ${fmt(k.baseline.non_kv_gib)} GiB per device`;
    $("knobstable").innerHTML = `<tr><th>knob</th><th>change</th><th class="num">GiB freed</th><th class="num">KV tokens</th><th class="num wide">util needed</th><th class="rule">cost</th></tr>` +
      k.knobs.map((x) => `<tr class="${x.verdict === "fails" ? "fails" : ""}"><td>${esc(x.knob)}</td><td><code>${esc(x.change)}</code></td>` +
        `<td class="num">${x.host_freed_gib ? "host " + fmt(x.host_freed_gib) : fmt(x.freed_gib)}</td>` +
        `<td class="num">${x.verdict === "fails" ? "fails" : (x.kv_tokens_added === null ? "–" : (x.kv_tokens_added > 0 ? "+" : "") + fmt(x.kv_tokens_added))}</td>` +
        `<td class="num wide">${fmt(x.util_needed)}</td><td class="rule">${esc(x.cost)}</td></tr>`).join("");
  } catch (e) { showError(e.message); }
}

const flagText = (change) => Object.entries(change).map(([f, v]) => `--${f.replace(/_/g, "-")}${v === true ? "" : " " + v}`).join(" ");

function renderKnobsSGLang(k) {
  $("knobsbase").textContent = `baseline: ${k.baseline.verdict}, ${fmt(k.baseline.kv_tokens)} KV tokens at --mem-fraction-static ${fmt(k.baseline.mem_fraction_static, 3)}`;
  $("knobstable").innerHTML = `<tr><th>knob</th><th>change</th><th class="num">KV tokens</th><th class="num wide">fraction</th><th class="rule">cost</th></tr>` +
    k.knobs.map((x) => `<tr class="${x.verdict === "starts" ? "" : "fails"}"><td>${esc(x.knob)}</td><td><code>${esc(flagText(x.change))}</code></td>` +
      `<td class="num">${x.verdict !== "starts" ? esc(x.verdict) : (x.kv_tokens_added === null ? "–" : (x.kv_tokens_added > 0 ? "+" : "") + fmt(x.kv_tokens_added))}</td>` +
      `<td class="num wide">${fmt(x.mem_fraction_static, 3)}</td><td class="rule">${esc(x.cost)}</td></tr>`).join("");
}

// ----- fit ---------------------------------------------------------------------------------------

async function runFit() {
  const req = target();
  const n = (id) => $(id).value.trim();
  req.concurrency = Number(n("fit_concurrency") || 1);
  if (n("fit_context")) req.context = Number(n("fit_context"));
  if (n("fit_images")) req.images_per_request = Number(n("fit_images"));
  if (n("fit_image")) req.image = n("fit_image");
  if (n("fit_budget")) req.budget_gib = n("fit_budget");
  saveUrl();
  try {
    const f = await api("/api/fit", req);
    if (!f) return;
    showError("");
    const p = f.plan;
    let h = `<div class="answer">${esc(f.answer)}</div>`;
    if (f.engine_name === "sglang") {
      h += `<h3>The command <button class="copy" data-copy="fitline" type="button">copy</button></h3><pre id="fitline">${esc(f.launch_line)}</pre>`;
      if (p.kv_cache_tokens) h += `<p>KV pool: <b>${fmt(p.kv_cache_tokens)}</b> tokens, ${fmt(p.max_concurrency)} requests of ${fmt(p.max_model_len)} tokens</p>`;
      $("fitout").innerHTML = h + `<div id="fitbar" class="chart"></div>`;
      drawBar($("fitbar"), segmentsOf(p), "The answer's memory per device");
      return;
    }
    if (f.lower_fails) h += `<div class="note">one step lower: ${esc(f.lower_fails)}</div>`;
    h += `<h3>The command <button class="copy" data-copy="fitline" type="button">copy</button></h3><pre id="fitline">${esc(f.serve_line)}</pre>`;
    if (f.kv_cache_memory_bytes) h += `<h3>Deterministic alternative (fixes the KV size)</h3><pre>${esc(f.serve_line_kv_cache_memory_bytes)}</pre>`;
    if (f.margin_gib !== null) h += `<p>Margin after CUDA graphs and the sampler warm-up: <b>${fmt(f.margin_gib)} GiB</b></p>`;
    if (p.kv_cache_tokens) h += `<p>KV cache: <b>${fmt(p.kv_cache_tokens)}</b> tokens, ${fmt(p.max_concurrency)} requests of ${fmt(p.max_model_len)} tokens</p>`;
    if ((f.alternatives || []).length) h += `<h3>Alternatives</h3><ul>${f.alternatives.map((a) => `<li>${esc(a)}</li>`).join("")}</ul>`;
    h += `<div id="fitbar" class="chart"></div>`;
    $("fitout").innerHTML = h;
    drawBar($("fitbar"), segmentsOf(p), "The answer's memory per device");
  } catch (e) { showError(e.message); $("fitout").innerHTML = ""; }
}

// ----- explain -----------------------------------------------------------------------------------

async function runExplain() {
  const log = $("log").value;
  if (!log.trim()) { showError("paste a vLLM or SGLang log first, or upload the file"); return; }
  try {
    const req = { log, compare: $("explain_compare").checked };
    if ($("explain_model").value.trim()) req.model = $("explain_model").value.trim();
    if ($("explain_device").value) req.device = $("explain_device").value;
    const x = await api("/api/explain", req);
    if (!x) return;
    showError("");
    if (x.engine_name === "sglang") { renderExplainSGLang(x); return; }
    const m = x.memory_gib;
    let h = `<div class="verdict ${x.verdict || ""}"><h2>${x.verdict === "fails" ? "vLLM did not start" : (x.verdict === "starts" ? "vLLM started" : "the log stops before the KV cache")}</h2>` +
      `<div>${esc(x.diagnosis)}</div>${x.error_message ? `<blockquote>${esc(x.error_message)}</blockquote>` : ""}` +
      `${x.fix ? `<div class="fix">Fix: ${esc(x.fix)}</div>` : ""}<div class="note">vLLM ${esc(x.vllm_version || "(version not logged)")} · log format ${esc(x.era)}${x.model ? " · " + esc(x.model) : ""}</div></div>`;
    h += `<div class="figures">${[["KV cache tokens", x.kv_cache_tokens], ["max concurrency", x.max_concurrency], ["KV blocks", x.num_gpu_blocks],
      ["KV cache GiB", m.kv_cache], ["weights GiB", m.weights], ["device total GiB", x.device.total_gib]]
      .map(([k, v]) => `<div class="fig"><div class="v">${fmt(v)}</div><div class="k">${esc(k)}</div></div>`).join("")}</div>`;
    h += `<div id="explainbar" class="chart"></div>`;
    if ((x.budget_checks || []).length) h += `<h3>The budget, as logged</h3><ul>${x.budget_checks.map((c) => `<li>${c.holds === false ? "✗" : (c.holds ? "✓" : "–")} ${esc(c.check)}: ${esc(c.arithmetic)}</li>`).join("")}</ul>`;
    h += compareTable(x, "vLLM");
    $("explainout").innerHTML = h;
    const segs = [["weights", "weights", m.weights], ["activation_peak", "torch peak increase", m.activation_peak],
      ["non_torch", "non-torch increase", m.non_torch], ["cudagraph_estimate", "CUDA-graph estimate", m.cudagraph_estimate],
      ["kv_cache", "KV cache", m.kv_cache]].filter((s) => s[2] !== null && s[2] !== undefined)
      .map(([key, label, gib]) => ({ key, label, gib, rule: "as logged by vLLM", kind: "logged" }));
    if (segs.length) drawBar($("explainbar"), [{ name: "logged", segs }], "Memory per device, as the log reports it");
  } catch (e) { showError(e.message); }
}

function compareTable(x, who) {
  if (x.compare && x.compare.rows) {
    return `<h3>Predicted (vramplan) vs logged (${who})</h3><div class="tablewrap"><table id="comparetable"><tr><th>term</th><th class="num">predicted</th><th class="num">logged</th><th class="num">difference</th></tr>` +
      x.compare.rows.map((r) => {
        const d = typeof r.predicted === "number" && typeof r.logged === "number" && r.logged ? r.predicted - r.logged : null;
        return `<tr><td>${esc(r.term)}</td><td class="num">${fmt(r.predicted)}</td><td class="num">${fmt(r.logged)}</td><td class="num">${d === null ? "" : (d >= 0 ? "+" : "") + fmt(d) + ` (${(100 * d / Math.abs(r.logged)).toFixed(1)}%)`}</td></tr>`;
      }).join("") + `</table></div>`;
  }
  return x.compare && x.compare.unavailable ? `<p class="note">predicted vs logged: ${esc(x.compare.unavailable.replace("pass --model", "name the model above"))}</p>` : "";
}

function renderExplainSGLang(x) {
  const m = x.memory_gb || {};
  let h = `<div class="verdict ${x.verdict || ""}"><h2>${x.verdict === "fails" ? "SGLang did not start" : (x.verdict === "starts" ? "SGLang started" : "the log stops before the KV pool")}</h2>` +
    `${x.error_message ? `<blockquote>${esc(x.error_message)}</blockquote>` : ""}<div class="note">SGLang ${esc(x.engine_version || "(version not logged)")} log${x.model ? " · " + esc(x.model) : ""}</div></div>`;
  h += `<div class="figures">${[["KV cache tokens", x.kv_cache_tokens], ["max running requests", x.max_running_requests], ["mem-fraction-static", x.mem_fraction_static],
    ["KV cache GB", m.kv_cache], ["weights GB", m.weights], ["free before loading GB", m.free_before_load]]
    .map(([k, v]) => `<div class="fig"><div class="v">${fmt(v)}</div><div class="k">${esc(k)}</div></div>`).join("")}</div>`;
  $("explainout").innerHTML = h + compareTable(x, "SGLang");
}

// ----- wiring ------------------------------------------------------------------------------------

const RUNNERS = { plan: null, sweep: runSweep, knobs: runKnobs, fit: runFit, explain: null };

function selectTab(tab, run = true) {
  if (!RUNNERS.hasOwnProperty(tab)) tab = "plan";
  state.tab = tab;
  for (const b of document.querySelectorAll("#tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
  for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== `panel-${tab}`;
  if (run) { saveUrl(); if (RUNNERS[tab]) RUNNERS[tab](); }
  for (const id of ["bar", "sweepchart", "fitbar", "explainbar"]) if ($(id) && window.Plotly && $(id).data) Plotly.Plots.resize($(id));
}

let timer = null;
function changed() {
  clearTimeout(timer);
  timer = setTimeout(() => { saveUrl(); runPlan(); if (RUNNERS[state.tab]) RUNNERS[state.tab](); }, 200);
}

function readFile(file, limit) {
  return new Promise((resolve, reject) => {
    if (file.size > limit) { reject(new Error(`${file.name} is ${(file.size / 1048576).toFixed(1)} MiB; the limit is ${limit / 1048576} MiB`)); return; }
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(new Error(`cannot read ${file.name}`));
    r.readAsText(file);
  });
}

async function takeConfig(file) {
  try {
    const text = await readFile(file, 512 * 1024);
    state.config = JSON.parse(text);
    state.configName = file.name;
    $("confignote").hidden = false;
    $("confignote").innerHTML = `using the dropped ${esc(file.name)} (${esc(state.config.model_type || "?")}); not kept in the link. <a href="#" id="clearconfig">use the catalog</a>`;
    $("clearconfig").addEventListener("click", (ev) => { ev.preventDefault(); state.config = null; $("confignote").hidden = true; $("configfile").value = ""; changed(); });
    changed();
  } catch (e) { showError(`config.json: ${e.message}`); }
}

async function init() {
  for (const f of document.querySelectorAll("form")) f.addEventListener("submit", (ev) => ev.preventDefault());
  try { state.catalog = await api("/api/catalog"); } catch (e) { showError(e.message); return; }
  const c = state.catalog;
  $("models").innerHTML = c.models.map((m) => `<option value="${esc(m)}">`).join("");
  $("engine").innerHTML = c.engines.map((e) => `<option value="${esc(e)}">${esc(ENGINE_NAMES[e] || e)}</option>`).join("");
  $("device").innerHTML = c.devices.map((d) => `<option value="${esc(d.name)}"${d.name === "h100-80gb" ? " selected" : ""}>${esc(d.name)} · ${fmt(d.total_gib)} GiB</option>`).join("");
  $("explain_device").innerHTML += c.devices.map((d) => `<option value="${esc(d.name)}">${esc(d.name)}</option>`).join("");
  setEngine("vllm");
  loadUrl();
  $("vllm_version").options[0].text = defaultRelease($("engine").value); // the device may have come with the link
  $("device").addEventListener("change", () => { $("vllm_version").options[0].text = defaultRelease($("engine").value); });
  $("engine").addEventListener("change", () => { setEngine($("engine").value); if (!$("sweep_range").value) $("sweep_range").value = defaultRange($("sweep_flag").value); });
  for (const k of FORM_KEYS) {
    if (k === "model") continue;
    $(k).addEventListener(($(k).tagName === "SELECT" || $(k).type === "checkbox") ? "change" : "input", changed);
  }
  // a catalog id replans as it is typed; any other name (a Hub id) only when the field is left or Enter pressed
  $("model").addEventListener("input", () => { if (c.models.includes($("model").value.trim())) changed(); });
  $("model").addEventListener("change", changed);
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => selectTab(b.dataset.tab));
  $("sweep_flag").addEventListener("change", () => { $("sweep_range").value = defaultRange($("sweep_flag").value); runSweep(); });
  $("sweep_go").addEventListener("click", runSweep);
  $("knobs_go").addEventListener("click", runKnobs);
  $("fit_go").addEventListener("click", runFit);
  $("explain_go").addEventListener("click", runExplain);
  $("configfile").addEventListener("change", () => { if ($("configfile").files[0]) takeConfig($("configfile").files[0]); });
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => { ev.preventDefault(); drop.classList.remove("over"); if (ev.dataTransfer.files[0]) takeConfig(ev.dataTransfer.files[0]); });
  $("logfile").addEventListener("change", async () => {
    const f = $("logfile").files[0];
    if (!f) return;
    try { $("log").value = await readFile(f, LOG_LIMIT); runExplain(); } catch (e) { showError(e.message); }
  });
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button.copy");
    if (b && navigator.clipboard) navigator.clipboard.writeText($(b.dataset.copy).textContent);
  });
  await runPlan();
  if (RUNNERS[state.tab]) RUNNERS[state.tab]();
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", init);
