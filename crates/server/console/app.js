// The Plinth console: signs in with a token (kept in sessionStorage), shows the views the
// server draws (/console/views/NAME), and redraws one when the change stream
// (/console/watch, the watch API's JSON lines) says an object it shows changed. Actions
// confirm first, then PUT the changed Cluster, or, for a host's maintenance, show the
// API's dry-run plan and POST the request; the API checks the token's role.

const TOKEN = 'plinth.token';
const VIEWS = ['pool', 'clusters', 'timeline', 'decide'];
// Which views show each kind of object.
const SHOWN_IN = {
  Host: ['pool'],
  VirtualMachine: ['pool', 'clusters'],
  Cluster: ['clusters', 'pool'],
  Event: ['timeline'],
};

const $ = (id) => document.getElementById(id);
let current = 'pool';
const stale = new Set(VIEWS);
let redraw = null;
let watching = null;

function token() {
  return sessionStorage.getItem(TOKEN);
}

function say(text) {
  $('status').textContent = text;
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${token()}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    signOut('The token was refused: sign in again.');
    throw new Error('unauthorized');
  }
  return response;
}

async function failure(response) {
  try {
    const status = await response.json();
    const first = (status.diagnostics || [])[0];
    const detail = first ? ` (${first.message}${first.help ? `: ${first.help}` : ''})` : '';
    return `${status.reason}: ${status.message}${detail}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

// Redraws a view, keeping the focused control and what was typed into it.
async function draw(view) {
  if (view === 'decide') return;
  const response = await api(`/console/views/${view}`);
  if (!response.ok) {
    say(await failure(response));
    return;
  }
  const html = await response.text();
  const section = $(`view-${view}`);
  const focused = document.activeElement;
  const keep = focused && section.contains(focused) && focused.id ? focused.id : null;
  const typed = keep && 'value' in focused ? focused.value : null;
  const scroll = section.querySelector('.event-scroll')?.scrollTop;
  section.innerHTML = html;
  if (scroll !== undefined) {
    const box = section.querySelector('.event-scroll');
    if (box) box.scrollTop = scroll;
  }
  if (keep) {
    const again = $(keep);
    if (again) {
      if (typed !== null) again.value = typed;
      again.focus();
    }
  }
  stale.delete(view);
  if (view === 'timeline') annotate();
  section.setAttribute('data-drawn', String(Date.now()));
}

function schedule() {
  if (redraw) return;
  redraw = setTimeout(() => {
    redraw = null;
    if (stale.has(current) && !$('confirm').open) draw(current);
  }, 200);
}

// Host failures as the change stream shows them: the events give detection and fencing
// (the server draws those); the stream shows when the host's VMs run elsewhere and their
// clusters are Ready again.
const failures = new Map();
const readyClusters = new Map();

function isReady(cluster) {
  return (cluster.status?.conditions || []).some((c) => c.type === 'Ready' && c.status === 'True');
}

function settle(failure, now) {
  if (failure.restarted && !failure.ready && [...failure.clusters].every((c) => readyClusters.get(c))) {
    failure.ready = now;
  }
}

function follow(object) {
  const now = Date.now();
  const name = object.metadata?.name;
  if (object.kind === 'Host') {
    const state = object.status?.state;
    const known = failures.get(name);
    if (['silent', 'fencing', 'failed'].includes(state) && (!known || known.ready)) {
      const vms = new Set(object.status?.vms || []);
      failures.set(name, { start: now, vms, moved: new Set(), clusters: new Set(), restarted: null, ready: null });
    }
  } else if (object.kind === 'VirtualMachine') {
    for (const [host, f] of failures) {
      if (!f.vms.has(name) || f.restarted) continue;
      f.clusters.add(object.spec?.cluster);
      if (object.status?.phase === 'Running' && object.status?.host && object.status.host !== host) {
        f.moved.add(name);
      }
      if (f.moved.size === f.vms.size) f.restarted = now;
      settle(f, now);
    }
  } else if (object.kind === 'Cluster') {
    readyClusters.set(name, isReady(object));
    for (const f of failures.values()) settle(f, now);
  }
}

function seconds(ms) {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

// Writes the phases the page saw into the server's failure rows that lack them.
function annotate() {
  for (const [host, f] of failures) {
    const row = document.querySelector(`#view-timeline li.failure[data-host="${CSS.escape(host)}"]`);
    if (!row) continue;
    for (const [phase, at] of [['restarted', f.restarted], ['Ready', f.ready]]) {
      const cell = row.querySelector(`li.phase[data-phase="${phase}"]`);
      if (!cell || !at || cell.classList.contains('seen')) continue;
      cell.classList.add('seen', 'watched');
      cell.querySelector('.phase-at').textContent = `+${seconds(at - f.start)}`;
      cell.title = 'seen by this page: the control plane records no event for it';
    }
  }
}

function changed(kind) {
  for (const view of SHOWN_IN[kind] || ['pool', 'clusters']) stale.add(view);
  schedule();
}

// Follows the change stream; on its end, opens it again and redraws (changes may have
// been missed meanwhile).
async function watch() {
  const controller = new AbortController();
  watching = controller;
  const live = (on, text) => {
    $('live').hidden = false;
    $('live').classList.toggle('off', !on);
    $('live-text').textContent = text;
  };
  try {
    const response = await api('/console/watch', { signal: controller.signal });
    if (!response.ok) throw new Error(await failure(response));
    live(true, 'live');
    VIEWS.forEach((v) => stale.add(v));
    schedule();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (!line.trim()) continue;
        const change = JSON.parse(line);
        follow(change.object || {});
        annotate();
        changed(change.object?.kind);
      }
    }
  } catch (e) {
    if (controller.signal.aborted) return;
    live(false, 'reconnecting');
  }
  if (watching === controller && token()) setTimeout(watch, 1000);
}

function show(view, focus = false) {
  current = view;
  for (const v of VIEWS) {
    const tab = $(`tab-${v}`);
    const on = v === view;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`view-${v}`).hidden = !on;
  }
  if (focus) $(`tab-${view}`).focus();
  if (location.hash !== `#${view}`) history.replaceState(null, '', `#${view}`);
  if (view === 'decide') {
    if (!$('report').srcdoc) compare();
  } else if (stale.has(view)) {
    draw(view);
  }
}

async function compare() {
  say('Simulating the applied estate in both designs…');
  $('compare').disabled = true;
  try {
    const response = await api('/apis/plinth.dev/v1alpha1/comparison', {
      headers: { Accept: 'text/html' },
    });
    if (!response.ok) {
      say(await failure(response));
      return;
    }
    $('report').srcdoc = await response.text();
    say('Comparison ready; searching what would change its answer…');
    const sweeps = await api('/console/views/decide');
    if (!sweeps.ok) {
      say(await failure(sweeps));
      return;
    }
    $('sweeps').innerHTML = await sweeps.text();
    say('Comparison and what would change it ready.');
  } finally {
    $('compare').disabled = false;
  }
}

// Asks for a confirmation of `text`; `detail` (nodes) shows what it would do, `verb` names
// the confirming button.
function ask(text, detail = [], verb = 'Apply') {
  $('confirm-text').textContent = text;
  $('confirm-detail').replaceChildren(...detail);
  $('confirm-ok').textContent = verb;
  const dialog = $('confirm');
  dialog.returnValue = '';
  dialog.showModal();
  $('confirm-cancel').focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

const CLUSTERS = '/apis/plinth.dev/v1alpha1/clusters';

// Reads the Cluster, changes its spec, PUTs it back with its resourceVersion (so a change
// made meanwhile is refused with 409 rather than overwritten).
async function change(cluster, edit, done) {
  const path = `${CLUSTERS}/${encodeURIComponent(cluster)}`;
  const read = await api(path);
  if (!read.ok) {
    say(await failure(read));
    return;
  }
  const object = await read.json();
  delete object.status;
  edit(object.spec);
  const written = await api(path, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(object),
  });
  say(written.ok ? done : await failure(written));
}

function element(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

// A maintenance plan as the API answers it: where each VM goes and when, what stops, and
// what would break.
function planNodes(review) {
  const plan = review.plan;
  const nodes = [
    element(
      'p',
      `${plan.moves.length} VMs move, ${plan.stops.length} stop; ${plan.parallel} migrations at a ` +
        `time; the host is empty after ${seconds(plan.completionMs)}.`,
    ),
  ];
  if (plan.moves.length) {
    const table = element('table', undefined, 'moves');
    const head = table.createTHead().insertRow();
    for (const h of ['VM', 'to', 'starts', 'takes']) head.append(element('th', h));
    const body = table.createTBody();
    for (const m of plan.moves) {
      const row = body.insertRow();
      row.dataset.vm = m.vm;
      for (const c of [m.vm, m.to, `+${seconds(m.startMs)}`, seconds(m.durationMs)]) {
        row.append(element('td', c));
      }
    }
    const box = element('div', undefined, 'plan-scroll');
    box.tabIndex = 0;
    box.setAttribute('role', 'region');
    box.setAttribute('aria-label', 'Migrations');
    box.append(table);
    nodes.push(box);
  }
  const list = (items, className) => {
    const ul = element('ul', undefined, className);
    for (const i of items) ul.append(element('li', i));
    return ul;
  };
  if (plan.stops.length) nodes.push(list(plan.stops.map((s) => `${s.vm} stops: ${s.reason}`), 'stops'));
  if (review.refusals.length) nodes.push(list(review.refusals, 'refusals'));
  else nodes.push(element('p', 'Safe: no etcd quorum or PodDisruptionBudget breaks.', 'safe'));
  return nodes;
}

// Plans the host's maintenance (a dry run of the API), shows the plan, and asks the
// control plane for it once confirmed (forced when the plan breaks a quorum or a budget).
async function maintain(host) {
  const path = `/apis/plinth.dev/v1alpha1/hosts/${encodeURIComponent(host)}/maintenance`;
  say(`Planning the maintenance of ${host}…`);
  const planned = await api(`${path}?dryRun=All`, { method: 'POST' });
  if (!planned.ok) return say(await failure(planned));
  const review = await planned.json();
  const safe = review.refusals.length === 0;
  const ok = await ask(
    safe
      ? `Take host ${host} down for maintenance? Its VMs move first.`
      : `Taking host ${host} down breaks what is listed below. Force it?`,
    planNodes(review),
    safe ? 'Start maintenance' : 'Force maintenance',
  );
  if (!ok) return say('Nothing changed.');
  const done = await api(`${path}${safe ? '' : '?force=true'}`, { method: 'POST' });
  say(
    done.ok
      ? `Maintenance of ${host} requested: the control plane moves its VMs, then takes it down.`
      : await failure(done),
  );
}

async function act(form) {
  if (form.classList.contains('maintain')) return maintain(form.dataset.host);
  const cluster = form.dataset.cluster;
  if (form.classList.contains('scale')) {
    const pool = form.dataset.pool;
    const replicas = Number(form.elements.replicas.value);
    const ok = await ask(
      `Scale pool ${pool} of cluster ${cluster} from ${form.dataset.replicas} to ${replicas} replicas?`,
    );
    if (!ok) return say('Nothing changed.');
    await change(
      cluster,
      (spec) => {
        const p = spec.nodePools.find((n) => n.name === pool);
        p.replicas = replicas;
      },
      `Pool ${cluster}/${pool} scaled to ${replicas}: the control plane reconciles it.`,
    );
  } else if (form.classList.contains('upgrade')) {
    const version = form.elements.version.value.trim();
    const image = form.elements.image.value.trim();
    if (version === form.dataset.version && image === form.dataset.image) {
      return say('The version and the image are the running ones: nothing to upgrade.');
    }
    const ok = await ask(
      `Roll cluster ${cluster} node by node to Kubernetes ${version} on ${image} ` +
        `(now ${form.dataset.version} on ${form.dataset.image})?`,
    );
    if (!ok) return say('Nothing changed.');
    await change(
      cluster,
      (spec) => {
        spec.kubernetesVersion = version;
        spec.osImage = image;
      },
      `Rolling upgrade of ${cluster} started.`,
    );
  }
}

function start() {
  $('sign-in').hidden = true;
  $('nav').hidden = false;
  $('sign-out').hidden = false;
  const wanted = location.hash.slice(1);
  show(VIEWS.includes(wanted) ? wanted : 'pool');
  watch();
}

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN);
  if (watching) watching.abort();
  watching = null;
  $('sign-in').hidden = false;
  $('nav').hidden = true;
  $('sign-out').hidden = true;
  $('live').hidden = true;
  for (const v of VIEWS) {
    $(`view-${v}`).hidden = true;
    if (v !== 'decide') $(`view-${v}`).innerHTML = '';
  }
  $('report').srcdoc = '';
  $('sweeps').innerHTML = '';
  $('sign-in-error').textContent = message;
  $('token').focus();
}

$('sign-in').addEventListener('submit', async (e) => {
  e.preventDefault();
  const secret = $('token').value.trim();
  const response = await fetch('/console/views/clusters', {
    headers: { Authorization: `Bearer ${secret}` },
  });
  if (!response.ok) {
    $('sign-in-error').textContent = await failure(response);
    return;
  }
  $('token').value = '';
  $('sign-in-error').textContent = '';
  sessionStorage.setItem(TOKEN, secret);
  start();
});

$('sign-out').addEventListener('click', () => signOut());
// Changes that came while the confirmation was open are drawn once it closes.
$('confirm').addEventListener('close', schedule);
$('compare').addEventListener('click', compare);

const tabs = document.querySelector('[role=tablist]');
tabs.addEventListener('click', (e) => {
  const view = e.target.closest('[role=tab]')?.dataset.view;
  if (view) show(view);
});
// Arrow keys move between tabs, as the WAI-ARIA tabs pattern has it.
tabs.addEventListener('keydown', (e) => {
  const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
  if (!step) return;
  const next = VIEWS[(VIEWS.indexOf(current) + step + VIEWS.length) % VIEWS.length];
  show(next, true);
});

document.addEventListener('submit', (e) => {
  const form = e.target.closest('form.action');
  if (!form) return;
  e.preventDefault();
  act(form);
});

if (token()) start();
else $('token').focus();
