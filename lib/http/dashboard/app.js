// Grapevine dashboard: draws the fleet as a graph of instances and links,
// lists keys and recent updates, and colours each instance by its state for
// the selected update, live.
//
// Sources, all read straight from the instances (their GET endpoints allow
// any origin):
// - GET /v1/status of every instance, every POLL_MS: links, members, digest.
// - GET /v1/events of every instance (Server-Sent Events): a report each
//   time the instance applies an update or stops spreading it.
// - GET /v1/config of the serving instance: the keys table.

const POLL_MS = 2000;
const MAX_UPDATES = 30;
const MAX_KEY_ROWS = 200;
const PULSE_MS = 700;
const KEY_REFRESH_MS = 300;
const WIDTH = 640;
const HEIGHT = 440;
const SVG = "http://www.w3.org/2000/svg";
const REGION_COLOURS = [
  "#4e79a7",
  "#e15759",
  "#76b7b2",
  "#b07aa1",
  "#9c755f",
  "#edc948",
  "#59a14f",
  "#ff9da7",
];

/**
 * Instances by id: `{ id, region, url, status, reachable, memberState,
 * stream }`, where `status` is the last /v1/status report.
 */
const instances = new Map();
/** Updates by id: `{ id, key, version, reports: Map(instance -> report) }`. */
const updates = new Map();
let selected = null;
let pinned = false;
let keyFilter = "";
let entries = [];

const $ = (selector) => document.querySelector(selector);

// ---- Data -------------------------------------------------------------------

/** Adds an instance seen in a member list and opens its update stream. */
function addInstance(member) {
  let instance = instances.get(member.id);
  if (!instance) {
    instance = {
      id: member.id,
      region: member.region,
      url: member.url,
      status: null,
      reachable: false,
      memberState: member.state,
      stream: null,
    };
    instances.set(member.id, instance);
  }
  if (member.url && instance.url !== member.url) {
    instance.stream?.close();
    instance.stream = null;
    instance.url = member.url;
  }
  if (instance.url && !instance.stream) openStream(instance);
  return instance;
}

// NOTE: the page holds one event stream per instance and polls every
// instance's status, which suits fleets of tens of instances, not thousands.
function openStream(instance) {
  const stream = new EventSource(`${instance.url}/v1/events`);
  instance.stream = stream;
  stream.addEventListener("hello", (event) => {
    const hello = JSON.parse(event.data);
    instance.region = hello.region;
    instance.reachable = true;
    // Oldest first, so the newest update ends up selected.
    for (const report of hello.updates.toReversed()) ingest(report, false);
    render();
  });
  stream.addEventListener("update", (event) => {
    ingest(JSON.parse(event.data), true);
    scheduleKeyRefresh();
    render();
  });
  // EventSource reconnects by itself; the next hello refreshes the state.
  stream.onerror = () => {
    instance.reachable = false;
    render();
  };
}

/** Compares versions `wall.counter.node` as the hybrid logical clock orders them. */
function compareVersions(a, b) {
  const [wallA, counterA, ...nodeA] = a.split(".");
  const [wallB, counterB, ...nodeB] = b.split(".");
  return Number(wallA) - Number(wallB) ||
    Number(counterA) - Number(counterB) ||
    nodeA.join(".").localeCompare(nodeB.join("."));
}

/** Records one instance's report about one update. */
function ingest(report, live) {
  let update = updates.get(report.update);
  if (!update) {
    update = {
      id: report.update,
      key: report.key,
      version: report.version,
      reports: new Map(),
    };
    updates.set(report.update, update);
    trimUpdates();
  }
  const before = update.reports.get(report.instance)?.state;
  update.reports.set(report.instance, report);

  // An instance that applied this version no longer has the older ones.
  if (report.state === "spreading" || report.state === "done") {
    for (const other of updates.values()) {
      const older = other.key === report.key &&
        compareVersions(other.version, report.version) < 0;
      const held = other.reports.get(report.instance);
      if (older && held && held.state !== "not_received") {
        other.reports.set(report.instance, { ...held, state: "superseded" });
      }
    }
  }

  if (!pinned && newerThanSelected(update)) {
    selected = update.id;
  }
  const arrived = before === undefined || before === "not_received";
  if (live && arrived && report.from && update.id === selected) {
    pulse(report.from, report.instance);
  }
}

function newerThanSelected(update) {
  const current = updates.get(selected);
  return !current || compareVersions(update.version, current.version) > 0;
}

function trimUpdates() {
  while (updates.size > MAX_UPDATES) {
    const oldest = [...updates.values()]
      .filter((update) => update.id !== selected)
      .sort((a, b) => compareVersions(a.version, b.version))[0];
    if (!oldest) return;
    updates.delete(oldest.id);
  }
}

/** State of the selected update on one instance. */
function stateOf(instanceId) {
  const report = updates.get(selected)?.reports.get(instanceId);
  return report?.state ?? "not_received";
}

async function fetchJson(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(POLL_MS) });
  if (!response.ok) throw new Error(`${url} returned HTTP ${response.status}`);
  return await response.json();
}

/** Reads every instance's status, learning new members on the way. */
async function poll() {
  try {
    const own = await fetchJson("/v1/status");
    for (const member of own.members) {
      addInstance(member).memberState = member.state;
    }
  } catch {
    // The serving instance is down; keep the last view.
  }
  await Promise.all([...instances.values()].map(async (instance) => {
    if (!instance.url) return;
    try {
      instance.status = await fetchJson(`${instance.url}/v1/status`);
      instance.reachable = true;
      for (const member of instance.status.members) addInstance(member);
    } catch {
      instance.reachable = false;
    }
  }));
  await refreshKeys();
  render();
}

async function refreshKeys() {
  try {
    entries = (await fetchJson("/v1/config")).entries;
  } catch {
    // Keep the last list.
  }
}

let keyRefresh = null;

/** Reads the keys again soon, once per burst of updates. */
function scheduleKeyRefresh() {
  keyRefresh ??= setTimeout(async () => {
    await refreshKeys();
    keyRefresh = null;
    drawKeys();
  }, KEY_REFRESH_MS);
}

// ---- Drawing ----------------------------------------------------------------

/** Positions instances on a circle, grouped by region. */
function layout() {
  const sorted = [...instances.values()].sort((a, b) =>
    a.region.localeCompare(b.region) || a.id.localeCompare(b.id)
  );
  const radius = Math.min(WIDTH, HEIGHT) / 2 - 60;
  const positions = new Map();
  sorted.forEach((instance, index) => {
    const angle = (2 * Math.PI * index) / sorted.length - Math.PI / 2;
    positions.set(instance.id, {
      x: WIDTH / 2 + radius * Math.cos(angle),
      y: HEIGHT / 2 + radius * Math.sin(angle),
    });
  });
  return positions;
}

function regionColour(region) {
  const regions = [...new Set([...instances.values()].map((i) => i.region))]
    .sort();
  return REGION_COLOURS[regions.indexOf(region) % REGION_COLOURS.length];
}

function element(name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawGraph() {
  const svg = $("#graph");
  const positions = layout();
  const pulses = [...svg.querySelectorAll(".pulse")];
  svg.replaceChildren();

  const drawn = new Set();
  for (const instance of instances.values()) {
    for (const link of instance.status?.links ?? []) {
      const pair = [instance.id, link.peer].sort().join(" ");
      const from = positions.get(instance.id);
      const to = positions.get(link.peer);
      if (drawn.has(pair) || !from || !to) continue;
      drawn.add(pair);
      svg.append(element("line", {
        class: "link",
        x1: from.x,
        y1: from.y,
        x2: to.x,
        y2: to.y,
      }));
    }
  }

  const update = updates.get(selected);
  for (const instance of instances.values()) {
    const { x, y } = positions.get(instance.id);
    const state = stateOf(instance.id);
    const health = !instance.reachable
      ? "unreachable"
      : instance.memberState ?? "alive";
    const group = element("g", {
      class: `node ${state} ${health}`,
      "data-instance": instance.id,
      "data-state": state,
      "data-health": health,
      transform: `translate(${x} ${y})`,
    });
    group.append(
      element("circle", { r: 22, stroke: regionColour(instance.region) }),
      element("text", { class: "id", y: 40 }, instance.id),
      element("text", { class: "region", y: 54 }, instance.region),
    );
    const report = update?.reports.get(instance.id);
    if (report?.applied_after_ms != null) {
      group.append(
        element("text", { class: "time", y: 4 }, `+${report.applied_after_ms}`),
      );
    }
    if (health !== "alive") {
      group.append(element("text", { class: "health", y: -28 }, health));
    }
    group.append(element("title", {}, tooltip(instance, report)));
    svg.append(group);
  }
  svg.append(...pulses);
}

function tooltip(instance, report) {
  const status = instance.status;
  const lines = [`${instance.id} (${instance.region}) ${instance.url ?? ""}`];
  if (status) {
    lines.push(
      `${status.entries} entries, digest ${status.digest.slice(0, 12)}`,
      `${status.links.length} links, ${status.rumors_active} rumors active`,
    );
  }
  if (report) {
    lines.push(
      `${report.state}` + (report.from ? `, from ${report.from}` : "") +
        (report.source ? ` by ${report.source}` : ""),
    );
  }
  return lines.join("\n");
}

/** Animates a dot from the sender to the receiver of an update. */
function pulse(fromId, toId) {
  const positions = layout();
  const from = positions.get(fromId);
  const to = positions.get(toId);
  if (!from || !to) return;
  const dot = element("circle", { class: "pulse", r: 6 });
  $("#graph").append(dot);
  const started = performance.now();
  function step(now) {
    const t = Math.min(1, (now - started) / PULSE_MS);
    dot.setAttribute("cx", from.x + (to.x - from.x) * t);
    dot.setAttribute("cy", from.y + (to.y - from.y) * t);
    if (t < 1) requestAnimationFrame(step);
    else dot.remove();
  }
  requestAnimationFrame(step);
}

function drawUpdate() {
  const update = updates.get(selected);
  const box = $("#update");
  if (!update) return;
  const counts = { not_received: 0, spreading: 0, done: 0, superseded: 0 };
  for (const instance of instances.values()) counts[stateOf(instance.id)]++;
  const received = instances.size - counts.not_received;
  const times = [...update.reports.values()]
    .map((report) => report.applied_after_ms)
    .filter((ms) => ms != null);
  box.dataset.update = update.id;
  box.dataset.received = String(received);
  box.dataset.total = String(instances.size);
  box.replaceChildren();
  const title = document.createElement("code");
  title.textContent = update.id;
  const summary = document.createElement("p");
  summary.className = "counts";
  summary.textContent = `${received} of ${instances.size} instances have it` +
    ` · ${counts.spreading} spreading · ${counts.done} done sharing` +
    (times.length ? ` · slowest +${Math.max(...times)} ms` : "");
  const pin = document.createElement("button");
  pin.textContent = pinned ? "Follow newest" : "Pin";
  pin.onclick = () => {
    pinned = !pinned;
    render();
  };
  box.append(title, summary, pin);
}

function drawUpdateList() {
  const list = $("#updates");
  const sorted = [...updates.values()]
    .sort((a, b) => compareVersions(b.version, a.version));
  list.replaceChildren(...sorted.map((update) => {
    const item = document.createElement("li");
    const have = [...update.reports.values()]
      .filter((report) => report.state !== "not_received").length;
    item.textContent = `${update.key} `;
    const count = document.createElement("span");
    count.textContent = `${have}/${instances.size}`;
    item.append(count);
    item.title = update.id;
    if (update.id === selected) item.className = "selected";
    item.onclick = () => {
      selected = update.id;
      pinned = true;
      render();
    };
    return item;
  }));
}

function drawKeys() {
  const shown = entries.filter((entry) => entry.key.includes(keyFilter));
  $("#key-count").textContent = `(${shown.length} of ${entries.length})`;
  $("#keys tbody").replaceChildren(
    ...shown.slice(0, MAX_KEY_ROWS).map((entry) => {
      const row = document.createElement("tr");
      for (
        const text of [entry.key, entry.version, JSON.stringify(entry.value)]
      ) {
        const cell = document.createElement("td");
        cell.textContent = text.length > 80 ? `${text.slice(0, 80)}…` : text;
        row.append(cell);
      }
      return row;
    }),
  );
}

function drawSummary() {
  const all = [...instances.values()];
  const up = all.filter((instance) => instance.reachable);
  const regions = new Set(all.map((instance) => instance.region));
  const digests = new Set(up.map((instance) => instance.status?.digest));
  const agree = up.length === all.length && digests.size === 1;
  const summary = $("#summary");
  summary.textContent = `${all.length} instances in ${regions.size} regions` +
    (up.length < all.length ? ` · ${all.length - up.length} unreachable` : "") +
    (agree ? " · all digests agree" : " · digests differ");
  summary.className = agree ? "agree" : "differ";
}

function render() {
  drawSummary();
  drawGraph();
  drawUpdate();
  drawUpdateList();
  drawKeys();
}

// ---- Controls ---------------------------------------------------------------

$("#key-filter").addEventListener("input", (event) => {
  keyFilter = event.target.value;
  drawKeys();
});

$("#push").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const key = String(form.get("key"));
  const text = String(form.get("value"));
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  const result = $("#push-result");
  try {
    const response = await fetch(
      `/v1/config/${key.split("/").map(encodeURIComponent).join("/")}`,
      { method: "PUT", body: JSON.stringify(value) },
    );
    const body = await response.json();
    result.textContent = response.ok
      ? `set ${body.key} at version ${body.version}`
      : body.error.message;
    if (response.ok) {
      pinned = false;
      selected = `${body.key}@${body.version}`;
    }
  } catch (error) {
    result.textContent = `Push failed: ${error.message}`;
  }
});

poll();
setInterval(poll, POLL_MS);
