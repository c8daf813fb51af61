// The meshmind explorer: polls this node's API and renders what it says. Everything shown comes
// from the network (names, tasks, keys), so it is written as text, never as markup.
"use strict";

const POLL_MS = 1000;
const RECENT = 8;
const seen = { head: undefined, certificates: new Set(), lastVote: new Map(), heads: [] };

async function get(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function short(hex) {
  return hex ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : "–";
}

function share(u16) {
  return `${((100 * u16) / 65535).toFixed(1)} %`;
}

function set(id, text) {
  document.getElementById(id).textContent = text;
}

// A row of cells: each a text, or {text, cls, title, num}.
function row(cells, attrs) {
  const tr = el("tr", null, attrs);
  for (const cell of cells) {
    const spec = typeof cell === "object" && cell !== null ? cell : { text: cell };
    const td = el("td", spec.text);
    if (spec.cls) td.className = spec.cls;
    if (spec.num) td.classList.add("num");
    if (spec.title) td.title = spec.title;
    tr.append(td);
  }
  return tr;
}

function fill(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
}

function drawChart(points) {
  const svg = document.getElementById("finality-chart");
  const ns = "http://www.w3.org/2000/svg";
  const shape = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const children = [];
  if (!points || points.length === 0) {
    children.push(shape("text", { x: 20, y: 100 }, "no epoch finalized on this node yet"));
    svg.replaceChildren(...children);
    return;
  }
  const [left, right, top, bottom] = [50, 790, 15, 180];
  const max = Math.max(1, ...points.map((p) => p[2]));
  const x = (i) => left + (points.length === 1 ? 0 : ((right - left) * i) / (points.length - 1));
  const y = (ms) => bottom - ((bottom - top) * ms) / max;
  children.push(shape("line", { x1: left, y1: bottom, x2: right, y2: bottom, stroke: "#263040" }));
  children.push(shape("text", { x: 4, y: top + 4 }, `${max} ms`));
  children.push(shape("text", { x: 4, y: bottom }, "0 ms"));
  children.push(shape("text", { x: left, y: 196 }, `epoch ${points[0][0]}`));
  children.push(shape("text", { x: right - 60, y: 196 }, `epoch ${points[points.length - 1][0]}`));
  const path = points.map((p, i) => `${x(i).toFixed(1)},${y(p[2]).toFixed(1)}`).join(" ");
  children.push(shape("polyline", { points: path, fill: "none", stroke: "#5fb3f9", "stroke-width": 2 }));
  points.forEach((p, i) => {
    const dot = shape("circle", { cx: x(i), cy: y(p[2]), r: p[1] === 0 ? 2 : 4, fill: p[1] === 0 ? "#5fb3f9" : "#e06c75" });
    dot.append(shape("title", {}, `epoch ${p[0]}: ${p[2]} ms, round ${p[1]}`));
    children.push(dot);
  });
  svg.replaceChildren(...children);
  svg.dataset.points = String(points.length);
}

function renderStatus(status) {
  const c = status.consensus || {};
  set("network", `network ${status.network} · ${status.role}`);
  set("head", c.finalized_epoch ?? "–");
  set("epoch", status.epoch);
  set("finality", c.last_finality_ms != null ? `${c.last_finality_ms} ms` : "–");
  set("round", c.round ?? "–");
  set("peer-count", status.peers);
  set("node", status.peer_id);
  drawChart(c.recent_finality);
}

// Certificates of the latest epochs not seen yet: who signed what, for "last vote".
async function learnVotes(head) {
  for (let epoch = Math.max(0, head - RECENT + 1); epoch <= head; epoch++) {
    if (seen.certificates.has(epoch)) continue;
    const cert = await get(`/certificates/${epoch}`).catch(() => null);
    if (!cert) continue;
    seen.certificates.add(epoch);
    // Only the latest epochs' certificates are looked at again.
    for (const old of seen.certificates) if (old + RECENT < epoch) seen.certificates.delete(old);
    for (const signer of cert.signers) {
      seen.lastVote.set(signer, Math.max(seen.lastVote.get(signer) ?? -1, epoch));
    }
  }
}

function renderValidators(economy, metagraphs, latest, delegates) {
  const takes = new Map((delegates || []).map((d) => [d.hotkey, d.take_per_mille]));
  const permits = new Map();
  for (const meta of metagraphs) {
    for (const neuron of meta?.chain?.neurons || []) {
      if (!neuron.validator_permit) continue;
      const since = neuron.permit_since != null ? ` (from ${neuron.permit_since})` : "";
      permits.set(neuron.hotkey, [...(permits.get(neuron.hotkey) || []), `${meta.subnet}${since}`]);
    }
  }
  const finalizers = new Map((economy.finalizers || []).map((f) => [f.hotkey, f]));
  const hotkeys = new Set([...finalizers.keys(), ...((latest && latest.next_validators) || []).map((v) => v.hotkey)]);
  const rows = [...hotkeys].sort().map((hotkey) => {
    const f = finalizers.get(hotkey);
    const vote = seen.lastVote.get(hotkey);
    let state = f ? (f.declared ? "declared" : `left at ${f.left_at}`) : "–";
    if (f && f.jailed_until != null) state = `jailed until ${f.jailed_until}`;
    return row(
      [
        { text: short(hotkey), title: hotkey, cls: "mono" },
        { text: f ? f.own_stake : "–", num: true },
        {
          text: f && f.in_next_set ? (f.in_set_since != null ? `yes, since epoch ${f.in_set_since}` : "yes") : "no",
          cls: f && f.in_next_set ? "yes" : "no",
        },
        (permits.get(hotkey) || []).join(", ") || "–",
        vote != null ? `epoch ${vote}` : "–",
        { text: state, cls: f && f.jailed_until != null ? "jailed" : "" },
        { text: takes.has(hotkey) ? `${takes.get(hotkey) / 10} %` : "–", num: true },
      ],
      { "data-hotkey": hotkey },
    );
  });
  fill(document.getElementById("validators"), rows);
}

function heatmap(subnet, latest) {
  const vectors = ((latest && latest.weights) || []).filter((w) => w.subnet === subnet);
  const table = el("table", null, { class: "heatmap", "data-subnet": subnet });
  if (vectors.length === 0) {
    table.append(row(["no weights in the latest snapshot"]));
    return table;
  }
  const uids = [...new Set(vectors.flatMap((v) => v.uids))].sort((a, b) => a - b);
  const head = el("tr");
  head.append(el("th", "validator \\ uid"));
  for (const uid of uids) head.append(el("th", uid));
  table.append(head);
  for (const vector of vectors) {
    const tr = el("tr");
    tr.append(el("th", short(vector.validator), { class: "mono", title: vector.validator }));
    const weights = new Map(vector.uids.map((uid, i) => [uid, vector.weights[i]]));
    for (const uid of uids) {
      const weight = weights.get(uid) || 0;
      const cell = el("td", null, { class: "cell", title: `uid ${uid}: ${weight} (${share(weight)})` });
      cell.style.background = `rgba(95, 179, 249, ${(0.08 + (0.92 * weight) / 65535).toFixed(3)})`;
      tr.append(cell);
    }
    table.append(tr);
  }
  return table;
}

function renderSubnets(metagraphs, latest, subnets) {
  const section = document.getElementById("subnets");
  const views = new Map((subnets || []).map((s) => [s.id, s]));
  const blocks = metagraphs.filter(Boolean).map((meta) => {
    const chain = meta.chain || { neurons: [], tasks: [], name: "" };
    const block = el("div", null, { class: "subnet", "data-subnet": meta.subnet });
    const view = views.get(meta.subnet);
    const param = (name) => view?.params?.find((p) => p.name === name)?.value ?? "–";
    const market = view ? ` · emission share ${(view.emission_share_ppm / 1e4).toFixed(2)} % · tempo ${param("tempo")} · kappa ${param("kappa")}` : "";
    block.append(el("h3", `subnet ${meta.subnet} · ${chain.name} · tasks ${chain.tasks.join(", ")} · burn ${chain.burn ?? "–"}${market}`));
    const table = el("table", null, { class: "neurons" });
    const head = el("tr");
    for (const name of ["uid", "hotkey", "stake", "incentive", "dividends", "emission", "permit", "active", "last update"]) {
      head.append(el("th", name));
    }
    const thead = el("thead");
    thead.append(head);
    table.append(thead);
    const body = el("tbody");
    for (const n of chain.neurons) {
      body.append(
        row([
          { text: n.uid, num: true },
          { text: short(n.hotkey), title: n.hotkey, cls: "mono" },
          { text: n.stake, num: true },
          { text: share(n.incentive), num: true },
          { text: share(n.dividends), num: true },
          { text: n.emission, num: true },
          { text: n.validator_permit ? "yes" : "no", cls: n.validator_permit ? "yes" : "no" },
          { text: n.active ? "yes" : "no", cls: n.active ? "yes" : "no" },
          { text: n.last_update, num: true },
        ]),
      );
    }
    table.append(body);
    block.append(table, el("h3", "weights in the latest snapshot"), heatmap(meta.subnet, latest));
    return block;
  });
  section.replaceChildren(el("h2", "Subnets"), ...blocks);
}

function renderSnapshots(snapshots) {
  const rows = snapshots.filter(Boolean).map((s) =>
    row([
      { text: s.epoch, num: true },
      { text: short(s.hash), title: s.hash, cls: "mono" },
      { text: short(s.proposer), title: s.proposer, cls: "mono" },
      { text: s.weights.length, num: true },
      { text: s.transactions.length, num: true },
      { text: s.evidence.length, num: true },
    ]),
  );
  fill(document.getElementById("snapshots"), rows);
}

function renderEvidence(evidence) {
  const rows = evidence.map((e) => row([e.kind, { text: short(e.validator), title: e.validator || "", cls: "mono" }, e.epoch ?? "–"]));
  fill(document.getElementById("evidence"), rows.length ? rows : [row(["none"])]);
}

function renderPeers(peers) {
  document.getElementById("peers").replaceChildren(...peers.map((p) => el("li", p)));
}

async function refresh(head) {
  const [economy, peers, evidence, subnets, delegates] = await Promise.all([
    get("/economy"),
    get("/peers"),
    get("/evidence"),
    get("/subnets").catch(() => []),
    get("/delegates").catch(() => []),
  ]);
  await learnVotes(head);
  const epochs = [];
  for (let epoch = head; epoch >= 0 && epochs.length < RECENT; epoch--) epochs.push(epoch);
  const snapshots = await Promise.all(epochs.map((e) => get(`/snapshots/${e}`).catch(() => null)));
  const metagraphs = await Promise.all(economy.subnets.map((s) => get(`/metagraph/${s}`).catch(() => null)));
  const latest = snapshots[0];
  renderValidators(economy, metagraphs, latest, delegates);
  renderSubnets(metagraphs, latest, subnets);
  renderSnapshots(snapshots);
  renderEvidence(evidence);
  renderPeers(peers);
}

async function tick() {
  const live = document.getElementById("live");
  try {
    const status = await get("/status");
    renderStatus(status);
    const head = status.consensus?.finalized_epoch;
    if (head != null && head !== seen.head) {
      await refresh(head);
      seen.head = head;
      seen.heads.push(head);
      // The latest heads this page saw, for whoever watches it (tests, people).
      if (seen.heads.length > 32) seen.heads.shift();
      document.body.dataset.heads = seen.heads.join(",");
    }
    live.textContent = "live";
    live.className = "pill ok";
  } catch (error) {
    live.textContent = `not answering: ${error.message}`;
    live.className = "pill stale";
  }
  setTimeout(tick, POLL_MS);
}

tick();
