// gaitstream dashboard: polls the API's read-only JSON and draws it with the locally served plotly.js.
// Every API error is shown in its panel (never swallowed); nothing is fetched outside this origin.
"use strict";

const PIPELINE_POLL_MS = 5000;
const LIVE_POLL_MS = 2000;
const RUN_POLL_MS = 1000;
const LIVE_HEIGHT = 420;
const PLOT_CONFIG = { displaylogo: false, displayModeBar: false, responsive: true };
const COLORS = { left: "#1f77b4", right: "#d62728", accuracy: "#1f5fa8", auc: "#2e7d32", leaky: "#c62828" };

const $ = (id) => document.getElementById(id);

// Bound beyond loopback, the API wants the bearer token for its reads too: once typed into the
// Retrain form's Token field (kept for this tab only), it goes with every request.
const TOKEN_KEY = "gaitstream-token";
let readsLocked = false;  // a read answered 401: refresh every panel once a token is entered

function savedToken() {
  const typed = $("retrain-token").value.trim();
  return typed || sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const token = savedToken();
  if (token && !headers.Authorization) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (err) {
    throw new Error(`${options.method || "GET"} ${path}: network error (${err.message})`);
  }
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (!response.ok) {
    let message = body && body.error ? body.error : text.slice(0, 300);
    if (body && body.line) message += ` (line ${body.line}${body.reason ? ": " + body.reason : ""})`;
    if (response.status === 401 && !(options.headers || {}).Authorization) {  // a read, not the Retrain form
      readsLocked = true;
      message += ": this API is reachable beyond this machine, enter its token in the Retrain form's Token field";
    }
    throw new Error(`${options.method || "GET"} ${path} → ${response.status}: ${message}`);
  }
  return body;
}

function showError(panel, err) {
  const box = $(`${panel}-error`);
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

const fmt = (value, digits = 3) => (value === null || value === undefined || Number.isNaN(value) ? "–" : Number(value).toFixed(digits));
const count = (value) => (value === null || value === undefined ? "–" : Number(value).toLocaleString("en"));
const timeOf = (iso) => (iso ? new Date(iso).toLocaleString("en-GB", { hour12: false }) : "–");

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function badge(text, kind) {
  const span = document.createElement("span");
  span.className = `badge ${kind || ""}`;
  span.textContent = text;
  return span;
}

function fillTable(id, rows, build, emptyText) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  if (!rows.length) {
    cell(body.insertRow(), emptyText, "muted").colSpan = $(id).tHead.rows[0].cells.length;
    return;
  }
  rows.forEach((item) => build(body.insertRow(), item));
}

// ---------------------------------------------------------------- Pipeline

async function refreshPipeline() {
  try {
    const status = await api("/dashboard/pipeline");
    showError("pipeline", null);
    renderPipeline(status);
  } catch (err) {
    showError("pipeline", err);
  }
}

function renderPipeline(status) {
  $("pipeline-updated").textContent = `checked ${new Date(status.checked_at_ms).toLocaleTimeString("en-GB")}`;
  fillTable("services", status.services, (row, service) => {
    row.dataset.service = service.name;
    cell(row, service.kind === "component" ? `${service.name} (process)` : service.name);
    row.insertCell().append(badge(service.ok ? "up" : "down", service.ok ? "ok" : "down"));
    const detail = cell(row, service.detail, "detail");
    detail.title = service.detail;
    cell(row, `${fmt(service.check_ms, 0)} ms`, "num");
  }, "no services");

  const streaming = status.streaming;
  const state = $("streaming-state");
  state.textContent = streaming.state || "unknown";
  state.className = `badge ${streaming.state === "running" && (streaming.age_s ?? 1e9) < 60 ? "ok" : "warn"}`;
  $("spark-ui").href = status.spark_ui_url;
  $("spark-ui").textContent = `Spark UI (${status.spark_ui_url})`;
  const lagByQuery = Object.fromEntries((status.kafka.queries || []).map((q) => [q.name, q.lag]));
  fillTable("queries", streaming.queries || [], (row, query) => {
    cell(row, query.name + (query.active === false ? " (stopped)" : ""));
    cell(row, query.batch_id ?? "–");
    cell(row, fmt(query.input_rows_per_second, 1), "num");
    cell(row, fmt(query.processed_rows_per_second, 1), "num");
    cell(row, query.timestamp ? timeOf(query.timestamp) : "–");
    const since = cell(row, query.last_progress_age_s == null ? "–" : ago(query.last_progress_age_s), "num");
    since.dataset.value = query.last_progress_age_s ?? "";
    if (query.stale) { since.classList.add("stale"); since.title = "stale: beyond supervise.stale_after_seconds"; }
    cell(row, count(lagByQuery[query.name]), "num");
  }, streaming.error || "no queries reported");
  renderSupervisors(status.supervisors || []);
  renderFlow(status.flow);
  const streamingNote = $("streaming-note");
  streamingNote.hidden = streaming.age_s === null || streaming.age_s < 60;
  streamingNote.textContent = `status file is ${fmt(streaming.age_s, 0)} s old: the job may be stopped`;

  $("kafka-topic").textContent = status.kafka.topic;
  $("kafka-end").textContent = count(status.kafka.end_offset);
  const bridge = status.bridge;
  $("bridge-received").textContent = count(bridge.received);
  $("bridge-forwarded").textContent = count(bridge.forwarded);
  $("bridge-dead").textContent = count(bridge.dead_lettered);
  $("bridge-rate").textContent = bridge.forwarded_per_s === undefined ? "–" : fmt(bridge.forwarded_per_s, 1);
  // Dead letters of bad devices (issue 12): a subset of dead_lettered; absent from an older bridge's file.
  $("bridge-clock-skew").textContent = count(bridge.clock_skew);
  $("bridge-too-many-walks").textContent = count(bridge.too_many_walks);
  $("bridge-kafka-refused").textContent = count(bridge.kafka_refused);
  $("bridge-open-walks").textContent = count(bridge.open_walks);
  $("bridge-broker-dropped").textContent = count(bridge.broker_dropped);
  const notes = [status.kafka.error, bridge.error,
    bridge.broker_dropped ? `ALARM: Mosquitto dropped ${bridge.broker_dropped} messages (queue full)` : null,
    bridge.age_s > 60 ? `bridge stats are ${fmt(bridge.age_s, 0)} s old` : null].filter(Boolean);
  $("pipeline-notes").hidden = !notes.length;
  $("pipeline-notes").textContent = notes.join("\n");
}

const SUPERVISOR_BADGE = { running: "ok", backoff: "warn", "gave-up": "down", stopped: "warn" };

// 95 s, 12 min, 5 h, 331 d: the time since a query's last batch at a glance
function ago(seconds) {
  for (const [limit, unit, size] of [[120, "s", 1], [7200, "min", 60], [172800, "h", 3600]]) {
    if (seconds < limit) return `${Math.round(seconds / size)} ${unit}`;
  }
  return `${Math.round(seconds / 86400)} d`;
}

function renderSupervisors(supervisors) {
  fillTable("supervisors", supervisors, (row, sup) => {
    row.dataset.process = sup.name;
    cell(row, sup.name);
    const state = sup.state === "backoff" ? "restarting" : (sup.alive || !sup.supervised ? sup.state : `${sup.state} (gone)`);
    const kind = !sup.supervised ? "" : (sup.alive ? SUPERVISOR_BADGE[sup.state] || "warn" : "down");
    row.insertCell().append(badge(state, kind));
    cell(row, sup.restarts, "num restarts");
    const last = sup.last_restart_at
      ? `${new Date(sup.last_restart_at * 1000).toLocaleTimeString("en-GB")}: ${sup.last_cause || "?"}` : "–";
    const detail = cell(row, last, "detail");
    detail.title = sup.last_error || last;
  }, "no pipeline processes");
}

// The banner: shown while data is not flowing (a query stale, the job or the bridge down or restarting).
function renderFlow(flow) {
  const banner = $("flow-banner");
  banner.hidden = !flow || flow.flowing;
  banner.textContent = banner.hidden ? "" : `Data is not flowing: ${flow.reasons.join("; ")}`;
}

// ---------------------------------------------------------------- walks (Live stream + Diagnosis pickers)

let walks = [];

async function loadWalks() {
  try {
    walks = await api("/dashboard/walks");
    showError("live", null);
  } catch (err) {
    showError("live", err);
    showError("diagnosis", err);
    return;
  }
  const subjects = [...new Set(walks.map((w) => w.subject_id))];
  for (const id of ["live-subject", "diagnose-subject"]) {
    const select = $(id);
    const previous = select.value;
    select.replaceChildren(...subjects.map((s) => new Option(s, s)));
    if (subjects.includes(previous)) select.value = previous;
  }
  if (!subjects.length) $("live-caption").textContent = "no walks in Cassandra yet: start a replay";
  fillWalkSelect();
}

function fillWalkSelect() {
  const select = $("live-walk");
  const previous = select.value;
  const subject = $("live-subject").value;
  const ids = walks.filter((w) => w.subject_id === subject).map((w) => w.walk_id);
  select.replaceChildren(...ids.map((id) => new Option(id, id)));
  if (ids.includes(previous)) select.value = previous;
  startLive();
}

// ---------------------------------------------------------------- Live stream

const live = { key: null, lastIndex: -1, index: [], left: [], right: [], last: null, sensorXY: null, timer: null, maxForce: 1 };

function startLive() {
  const subject = $("live-subject").value;
  const walk = $("live-walk").value;
  const key = subject && walk ? `${subject}/${walk}` : null;
  if (key === live.key) return;
  Object.assign(live, { key, lastIndex: -1, index: [], left: [], right: [], last: null, maxForce: 1 });
  clearTimeout(live.timer);
  if (key) pollLive();
}

async function pollLive() {
  const key = live.key;
  const [subject, walk] = key.split("/");
  try {
    const params = new URLSearchParams({ subject_id: subject, walk_id: walk, after: String(live.lastIndex) });
    const body = await api(`/dashboard/windows?${params}`);
    if (key !== live.key) return;  // the user picked another walk meanwhile
    showError("live", null);
    live.sensorXY = body.sensor_xy;
    for (const window of body.windows) {
      live.index.push(window.window_index);
      live.left.push(window.total_l);
      live.right.push(window.total_r);
      live.lastIndex = window.window_index;
      live.last = window;
      for (const value of Object.values(window.sensors)) if (value > live.maxForce) live.maxForce = value;
    }
    if (body.windows.length || !$("live-forces").data) drawLive();
  } catch (err) {
    showError("live", err);
  }
  if (key === live.key) live.timer = setTimeout(pollLive, LIVE_POLL_MS);
}

function drawLive() {
  const last = live.last;
  $("live-caption").textContent = last
    ? `${live.index.length} windows; last: #${last.window_index} (${last.sample_count} samples${last.partial ? ", partial" : ""})`
    : "no windows for this walk yet";
  const mean = (values) => { const ok = values.filter((v) => v !== null); return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : null; };
  const [meanLeft, meanRight] = [mean(live.left), mean(live.right)];
  $("live-left").textContent = last ? `${fmt(last.total_l, 1)} N` : "–";
  $("live-right").textContent = last ? `${fmt(last.total_r, 1)} N` : "–";
  $("live-means").textContent = meanLeft === null ? "–" : `${fmt(meanLeft, 1)} / ${fmt(meanRight, 1)} N`;
  $("live-asymmetry").textContent = meanLeft === null ? "–" : `${fmt((100 * (meanRight - meanLeft)) / (meanRight + meanLeft), 1)} %`;
  Plotly.react("live-forces", [
    { x: live.index, y: live.left, name: "left foot", mode: "lines", line: { color: COLORS.left } },
    { x: live.index, y: live.right, name: "right foot", mode: "lines", line: { color: COLORS.right } },
  ], {
    title: { text: "Total force per 100-sample window (mean, N)", font: { size: 13 } },
    margin: { l: 50, r: 10, t: 35, b: 75 }, height: LIVE_HEIGHT,
    xaxis: { title: { text: "window index" } }, yaxis: { title: { text: "N" }, rangemode: "tozero" },
    legend: { orientation: "h", y: -0.18, x: 0.5, xanchor: "center", yanchor: "top" },
  }, PLOT_CONFIG);

  const names = Object.keys(live.sensorXY || {});
  const values = names.map((name) => (last ? last.sensors[name] : null));
  const insole = (x0, x1) => ({ type: "circle", xref: "x", yref: "y", x0, x1, y0: -1050, y1: 1050,
    line: { color: "#9aa7b4", width: 1.5 }, fillcolor: "rgba(230,236,242,0.5)", layer: "below" });
  Plotly.react("live-heatmap", [{
    type: "scatter", mode: "markers+text", x: names.map((n) => live.sensorXY[n][0]), y: names.map((n) => live.sensorXY[n][1]),
    text: names, textposition: "middle center", textfont: { size: 9, color: "#111" },
    customdata: values, hovertemplate: "%{text}: %{customdata:.1f} N<extra></extra>",
    marker: { size: 38, color: values.map((v) => v ?? 0), cmin: 0, cmax: live.maxForce, colorscale: "YlOrRd", reversescale: true,
      line: { color: "#555", width: 1 }, colorbar: { title: { text: "N" }, thickness: 10 } },
  }], {
    title: { text: `Sensors, window #${last ? last.window_index : "–"}`, font: { size: 13 } },
    margin: { l: 10, r: 10, t: 35, b: 25 }, height: LIVE_HEIGHT, showlegend: false,
    xaxis: { range: [-950, 950], visible: false }, yaxis: { range: [-1100, 1100], visible: false, scaleanchor: "x" },
    shapes: [insole(-900, -100), insole(100, 900)],
    annotations: [{ x: -500, y: -1100, text: "left", showarrow: false }, { x: 500, y: -1100, text: "right", showarrow: false }],
  }, PLOT_CONFIG);
}

// ---------------------------------------------------------------- Models

const subjectSummary = (run) => run.metrics?.subject_wise?.summary?.subjects || {};
const leakyAccuracy = (run) => run.metrics?.leaky_random_row_split?.rows?.accuracy ?? null;

async function refreshModels() {
  let runs, models;
  try {
    [runs, models] = await Promise.all([api("/runs?limit=100"), api("/models")]);
    showError("models", null);
  } catch (err) {
    showError("models", err);
    return;
  }
  const finished = runs.filter((r) => r.status === "succeeded").reverse();  // oldest first
  drawHistory(finished);
  fillTable("runs", runs.slice(0, 8), (row, run) => {
    row.dataset.runId = run.run_id;
    const summary = subjectSummary(run);
    cell(row, timeOf(run.finished_at || run.created_at));
    cell(row, `${run.params.family} / ${run.params.feature_set}`);
    cell(row, run.params.evaluation);
    row.insertCell().append(badge(run.status, run.status === "succeeded" ? "ok" : run.status === "failed" ? "down" : "warn"));
    cell(row, fmt(summary.accuracy), "num");
    cell(row, fmt(summary.roc_auc), "num");
    const leaky = cell(row, "", "num");
    if (leakyAccuracy(run) !== null) leaky.append(`${fmt(leakyAccuracy(run))} `, badge("leaky", "leaky"));
    else leaky.textContent = "–";
    const version = cell(row, run.model_version || "–");
    const held = (models.find((m) => m.version === run.model_version) || { aliases: [] }).aliases;
    held.forEach((alias) => version.append(" ", badge(alias, alias === "champion" ? "ok" : "warn")));
  }, "no runs yet: retrain below");

  const current = models.find((m) => m.current);
  if (!current) {
    $("current-version").textContent = "none promoted yet";
    return;
  }
  $("current-version").textContent = current.version;
  $("current-aliases").replaceChildren(...current.aliases.map((alias) => badge(alias, alias === "champion" ? "ok" : "warn")));
  $("current-family").textContent = `${current.family} / ${current.feature_set}`;
  let run = runs.find((r) => r.run_id === current.run_id);
  if (!run) {
    try { run = await api(`/runs/${encodeURIComponent(current.run_id)}`); } catch (err) { showError("models", err); return; }
  }
  drawCurrent(run);
}

function drawHistory(runs) {
  const x = runs.map((r) => r.finished_at);
  const hover = runs.map((r) => `${r.params.family}/${r.params.feature_set} · ${r.model_version}`);
  const metric = (name) => runs.map((r) => subjectSummary(r)[name] ?? null);
  const leakyRuns = runs.filter((r) => leakyAccuracy(r) !== null);
  Plotly.react("run-history", [
    { x, y: metric("accuracy"), name: "accuracy (subject-wise, per subject)", mode: "lines+markers", text: hover,
      error_y: { type: "data", array: metric("accuracy_sd"), visible: true, thickness: 1 }, line: { color: COLORS.accuracy } },
    { x, y: metric("roc_auc"), name: "ROC-AUC (subject-wise, per subject)", mode: "lines+markers", text: hover,
      line: { color: COLORS.auc } },
    { x: leakyRuns.map((r) => r.finished_at), y: leakyRuns.map(leakyAccuracy), name: "LEAKY: random row split accuracy",
      mode: "markers", text: leakyRuns.map((r) => `leaky (subjects in train and test) · ${r.model_version}`),
      marker: { symbol: "x-open", size: 10, color: COLORS.leaky } },
  ], {
    title: { text: "Run history", font: { size: 13 } }, height: 280, margin: { l: 45, r: 10, t: 35, b: 40 },
    yaxis: { range: [0, 1.05], title: { text: "score" } }, xaxis: { type: "date" },
    legend: { orientation: "h", y: -0.25, font: { size: 10 } },
  }, PLOT_CONFIG);
}

function drawCurrent(run) {
  const summary = subjectSummary(run);
  const accuracy = $("current-accuracy");
  accuracy.textContent = `${fmt(summary.accuracy)} ± ${fmt(summary.accuracy_sd, 2)}`;
  accuracy.dataset.value = summary.accuracy ?? "";
  $("current-auc").textContent = `${fmt(summary.roc_auc)} ± ${fmt(summary.roc_auc_sd, 2)}`;
  $("current-auc").dataset.value = summary.roc_auc ?? "";
  $("current-leaky").textContent = leakyAccuracy(run) === null ? "not evaluated" : `${fmt(leakyAccuracy(run))} (not a valid estimate)`;

  const repeats = run.metrics?.subject_wise?.per_repeat || [];
  const curves = repeats.filter((r) => r.subjects?.roc_curve).map((r) => ({
    x: r.subjects.roc_curve.fpr, y: r.subjects.roc_curve.tpr, mode: "lines", line: { shape: "hv" },
    name: `seed ${r.seed}: AUC ${fmt(r.subjects.roc_auc, 2)}`,
  }));
  Plotly.react("roc-curve", [...curves,
    { x: [0, 1], y: [0, 1], mode: "lines", name: "chance", line: { dash: "dot", color: "#999" }, hoverinfo: "skip" }], {
    title: { text: curves.length ? "ROC, per subject (out of fold)" : "ROC: not in this run (older run)", font: { size: 13 } },
    height: 280, margin: { l: 45, r: 10, t: 35, b: 40 },
    xaxis: { title: { text: "false positive rate" }, range: [0, 1] }, yaxis: { title: { text: "true positive rate" }, range: [0, 1.02] },
    legend: { x: 0.98, y: 0.02, xanchor: "right", font: { size: 10 } },
  }, PLOT_CONFIG);

  drawReliability(run);
  const interval = summary.interval || {};
  const ci = (pair) => (pair ? `[${fmt(pair[0], 2)}, ${fmt(pair[1], 2)}]` : "–");
  $("current-ci").textContent = `${ci(interval.roc_auc_ci)} / ${ci(interval.accuracy_ci)}`;
  $("current-brier").textContent = fmt(summary.brier);
  const heldOut = run.metrics?.study_held_out || {};
  $("current-held-out").textContent = Object.keys(heldOut).length
    ? Object.entries(heldOut).map(([study, r]) => `${study} ${fmt(r.subjects?.roc_auc, 2)}`).join(" · ") : "–";

  const first = repeats[0]?.subjects?.confusion;
  const z = first ? [[first.tn, first.fp], [first.fn, first.tp]] : [[0, 0], [0, 0]];
  Plotly.react("confusion", [{
    type: "heatmap", z, x: ["control", "parkinsons"], y: ["control", "parkinsons"], colorscale: "Blues", reversescale: true, showscale: false,
    text: z.map((row) => row.map(String)), texttemplate: "%{text}", textfont: { size: 16 },
    hovertemplate: "actual %{y}, predicted %{x}: %{z}<extra></extra>",
  }], {
    title: { text: `Confusion, subjects${repeats[0] ? ` (seed ${repeats[0].seed})` : ""}`, font: { size: 13 } },
    height: 280, margin: { l: 80, r: 10, t: 35, b: 45 },
    xaxis: { title: { text: "predicted" } }, yaxis: { title: { text: "actual" }, autorange: "reversed" },
  }, PLOT_CONFIG);

  const bv = run.metrics?.bias_variance || {};
  $("bv-split").textContent = bv.split ? `${bv.split}, ${bv.num_rounds} rounds` : "";
  $("bv-loss").textContent = fmt(bv.expected_loss);
  $("bv-bias").textContent = fmt(bv.bias);
  $("bv-variance").textContent = fmt(bv.variance);
}

function drawReliability(run) {
  // out-of-fold reliability, per subject, all repeats pooled (flat lists in the run document)
  const calibration = run.metrics?.subject_wise?.summary?.calibration;
  const curve = calibration?.reliability;
  const traces = curve ? [{
    x: curve.mean_predicted, y: curve.fraction_parkinsons, mode: "lines+markers", name: `out of fold (Brier ${fmt(calibration.brier, 3)})`,
    text: curve.count.map((n) => `${n} subject-repeats`), marker: { size: curve.count.map((n) => 5 + Math.sqrt(n)) },
    line: { color: COLORS.auc },
  }] : [];
  Plotly.react("reliability-curve", [...traces,
    { x: [0, 1], y: [0, 1], mode: "lines", name: "perfect calibration", line: { dash: "dot", color: "#999" }, hoverinfo: "skip" }], {
    title: { text: curve ? "Reliability, per subject (out of fold)" : "Reliability: not in this run (older run)", font: { size: 13 } },
    height: 280, margin: { l: 45, r: 10, t: 35, b: 40 },
    xaxis: { title: { text: "predicted P(Parkinson's)" }, range: [0, 1] }, yaxis: { title: { text: "observed share PD" }, range: [0, 1.02] },
    legend: { x: 0.02, y: 0.98, font: { size: 10 } },
  }, PLOT_CONFIG);
}

async function retrain(event) {
  event.preventDefault();
  const status = $("retrain-status");
  const button = $("retrain-button");
  const setStatus = (text, state) => { status.textContent = text; status.dataset.status = state; };
  button.disabled = true;
  showError("models", null);
  try {
    const accepted = await api("/retrain", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${$("retrain-token").value.trim()}` },
      body: JSON.stringify({ family: $("retrain-family").value, feature_set: $("retrain-features").value,
        evaluation: $("retrain-evaluation").value, promote: $("retrain-promote").checked }),
    });
    setStatus(`run ${accepted.run_id}: ${accepted.status}`, accepted.status);
    const started = Date.now();
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, RUN_POLL_MS));
      const run = await api(accepted.status_url);
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      if (run.status === "succeeded") {
        setStatus(`run ${run.run_id} succeeded in ${seconds} s: model ${run.model_version}${run.promoted ? " (promoted)" : ""}, `
          + `subject-wise accuracy ${fmt(subjectSummary(run).accuracy)}`, "succeeded");
        break;
      }
      if (run.status === "failed") {
        setStatus(`run ${run.run_id} failed: ${run.error}`, "failed");
        break;
      }
      setStatus(`run ${run.run_id}: ${run.status} (${seconds} s)`, run.status);
    }
    await refreshModels();
  } catch (err) {
    setStatus("", "error");
    showError("models", err);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- Diagnosis

function renderDiagnosis(result, source) {
  $("diagnosis-result").hidden = false;
  $("diagnosis-source").textContent = source;
  const probability = $("diagnosis-probability");
  probability.textContent = `${(100 * result.probability_parkinsons).toFixed(1)} %`;
  probability.dataset.value = result.probability_parkinsons;
  const prediction = $("diagnosis-prediction");
  prediction.textContent = result.prediction;
  prediction.className = `badge ${result.prediction === "parkinsons" ? "down" : "ok"}`;
  const calibrated = result.calibrated ? "calibrated" : "uncalibrated";
  $("diagnosis-model").textContent = `${result.model_version} (${result.family}/${result.feature_set}, ${calibrated})`;
  $("diagnosis-rows").textContent = `${result.rows_used} rows, ${result.walks ?? 1} walk(s)`;
  fillTable("drivers", result.drivers, (row, driver) => {
    cell(row, driver.feature);
    cell(row, fmt(driver.importance), "num");
    cell(row, fmt(driver.value), "num");
    cell(row, fmt(driver.median_parkinsons), "num");
    cell(row, fmt(driver.median_control), "num");
    cell(row, driver.closer_to || "–");
  }, "this model family reports no feature weights (KNN)");
}

async function diagnoseSubject(event) {
  event.preventDefault();
  const subject = $("diagnose-subject").value;
  try {
    const result = await api("/diagnose", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ subject_id: subject }) });
    showError("diagnosis", null);
    renderDiagnosis(result, `subject ${subject} (features from Cassandra)`);
  } catch (err) {
    showError("diagnosis", err);
  }
}

async function diagnoseFile(event) {
  event.preventDefault();
  const file = $("diagnose-file").files[0];
  if (!file) {
    showError("diagnosis", new Error("choose a walk file first (gaitpdb text, or .gz)"));
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const result = await api("/diagnose/walk", { method: "POST", body: form });
    showError("diagnosis", null);
    renderDiagnosis(result, `file ${file.name} (${result.samples ?? "?"} samples)`);
  } catch (err) {
    showError("diagnosis", err);
  }
}

// ---------------------------------------------------------------- Live diagnosis

const PREDICTIONS_POLL_MS = 2000;

function probabilityColour(p) {
  // green (control) → amber → red (Parkinson's), on the calibrated probability
  if (p === null || p === undefined) return "#999";
  const hue = Math.round(120 * (1 - Math.min(Math.max(p, 0), 1)));
  return `hsl(${hue}, 65%, 42%)`;
}

async function refreshPredictions() {
  let live;
  try {
    live = await api("/dashboard/predictions?limit=60");
    showError("predictions", null);
  } catch (err) {
    showError("predictions", err);
    return;
  }
  const streaming = live.walks.filter((w) => !w.final).length;
  $("predictions-caption").textContent = live.alias_version
    ? `scored by the model behind alias "${live.alias}": ${live.alias_version} · ${streaming} walk(s) streaming now`
    : `no model behind alias "${live.alias}": the stream writes no predictions until one is promoted`;
  fillTable("predictions-table", live.walks, (row, w) => {
    cell(row, w.subject_id);
    cell(row, w.walk_id);
    const p = cell(row, fmt(w.probability, 3), "num");
    p.style.color = probabilityColour(w.probability);
    p.style.fontWeight = "bold";
    cell(row, w.label || "–").style.color = probabilityColour(w.probability);
    row.insertCell().appendChild(badge(w.final ? "final" : "streaming", w.final ? "" : "live"));
    cell(row, count(w.samples), "num");
    cell(row, `${w.model_version || "–"}${w.model_alias ? " (" + w.model_alias + ")" : ""}`, "small");
    cell(row, w.age_s === null ? "–" : `${Math.round(w.age_s)} s ago`, "small");
  }, "no live predictions yet");
}

// ---------------------------------------------------------------- start

function every(ms, task) {
  task();
  setInterval(task, ms);
}

document.addEventListener("DOMContentLoaded", () => {
  if (typeof Plotly === "undefined") {
    for (const panel of ["live", "models"]) showError(panel, new Error("plotly.js did not load from /vendor/plotly.min.js"));
  }
  $("live-subject").addEventListener("change", fillWalkSelect);
  $("live-walk").addEventListener("change", startLive);
  $("retrain-form").addEventListener("submit", retrain);
  $("retrain-token").addEventListener("change", () => {
    sessionStorage.setItem(TOKEN_KEY, $("retrain-token").value.trim());
    if (readsLocked) { readsLocked = false; refreshPipeline(); loadWalks(); refreshModels(); refreshPredictions(); }
  });
  $("diagnose-subject-form").addEventListener("submit", diagnoseSubject);
  $("diagnose-file-form").addEventListener("submit", diagnoseFile);
  every(1000, () => { $("clock").textContent = new Date().toLocaleTimeString("en-GB"); });
  every(PIPELINE_POLL_MS, refreshPipeline);
  every(30000, loadWalks);
  every(15000, refreshModels);
  every(PREDICTIONS_POLL_MS, refreshPredictions);
});
