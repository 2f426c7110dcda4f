// @ts-check
// The dashboard's page: the snapshot `swarmctl query --json` prints, redrawn
// when the event feed (Server-Sent Events) says something happened, with
// uPlot charts of the samples table. Every text from the swarm goes in
// through textContent: a worker's message is data, never markup. Writes
// carry the token from this page's URL (?token=, as `swarmctl dashboard`
// prints it).
'use strict';

const token = new URLSearchParams(location.search).get('token') ?? '';
const withToken = (/** @type {string} */ p) => (token ? `${p}${p.includes('?') ? '&' : '?'}token=${token}` : p);
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {string} tag @param {Record<string, string>} [attrs] @param {(Node | string)[]} [children] */
function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

/** @param {number | null | undefined} ms */
function age(ms) {
  if (ms === null || ms === undefined) return '-';
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

/** @param {string} path @param {unknown} body */
async function act(path, body) {
  const res = await fetch(withToken(path), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-swarm-token': token },
    body: JSON.stringify(body),
  });
  const out = await res.json().catch(() => ({}));
  const notice = $('notice');
  notice.hidden = res.ok;
  if (!res.ok)
    notice.textContent = `${body && typeof body === 'object' && 'op' in body ? body.op : ''} refused: ${JSON.stringify(out)}`;
  scheduleRefresh();
}

/** @type {Set<number>} */
const openIncidents = new Set();
/** An open incident's events, by id, with the status they were read at: drawn at once on each redraw, read again when the status moves. @type {Map<number, {status: string, events: any[]}>} */
const incidentCache = new Map();

/** @param {any} s */
function render(s) {
  document.title = `Swarm ${s.swarm}`;
  $('swarm').textContent = `Swarm ${s.swarm}`;
  const flags = $('flags');
  flags.replaceChildren(
    ...[s.run?.degraded ? 'DEGRADED' : '', s.run?.paused ? 'PAUSED' : '']
      .filter(Boolean)
      .map((f) => el('span', { class: 'flag', 'data-flag': f }, [f])),
  );
  $('run').textContent = s.run ? `run ${s.run.id}: ${s.run.status}` : 'no run yet';
  $('problems').replaceChildren(
    ...(s.problems.length ? s.problems : ['none']).map((/** @type {string} */ p) => el('li', {}, [p])),
  );

  $('escalations').replaceChildren(
    ...s.escalations
      .slice()
      .reverse()
      .map((/** @type {any} */ e) => {
        const li = el('li', { 'data-escalation': String(e.id), 'data-status': e.status }, [
          el('span', { class: `status-${e.status}` }, [e.status]),
          ` #${e.id} ${e.target}: ${e.reason} `,
        ]);
        if (e.status === 'open') {
          const b = el('button', { type: 'button', 'data-ack': String(e.id) }, ['Ack']);
          b.addEventListener('click', () => act('/api/action', { op: 'ack', id: e.id }));
          li.append(b);
        }
        return li;
      }),
  );

  $('incidents').replaceChildren(
    ...s.incidents
      .slice()
      .reverse()
      .map((/** @type {any} */ i) => {
        const li = el('li', { class: 'incident', 'data-incident': String(i.id), 'data-status': i.status }, [
          el('span', { class: `status-${i.status}` }, [i.status]),
          ` #${i.id} ${i.class} on ${i.target}, ${new Date(i.openedAt).toLocaleTimeString()}`,
        ]);
        li.addEventListener('click', () => {
          if (openIncidents.has(i.id)) openIncidents.delete(i.id);
          else openIncidents.add(i.id);
          scheduleRefresh();
        });
        if (openIncidents.has(i.id)) {
          const cached = incidentCache.get(i.id);
          if (cached) li.append(incidentSteps(cached.events));
          if (!cached || cached.status !== i.status) void loadIncident(i.id, i.status);
        }
        return li;
      }),
  );

  $('workers').replaceChildren(
    ...s.workers.map((/** @type {any} */ w) => {
      const restart = el('button', { type: 'button', 'data-restart': w.id }, ['Restart']);
      restart.addEventListener('click', () => act('/api/action', { op: 'restart', worker: w.id }));
      return el('tr', { 'data-worker': w.id }, [
        // A slurm worker is a batch job: its job id, node and SLURM's state stand where a pid would.
        el(
          'td',
          {},
          w.slurm ? [w.id, el('small', {}, [` job ${w.slurm.jobId} ${w.slurm.node ?? ''} ${w.slurm.state}`])] : [w.id],
        ),
        el('td', { class: `status-${w.status}` }, [w.status]),
        el('td', {}, [String(w.attempt)]),
        el('td', {}, [age(w.progressAgeMs)]),
        el('td', {}, [w.progress?.summary ?? '-']),
        el('td', {}, [w.cpuPct === null ? '-' : `${w.cpuPct}%`]),
        el('td', {}, [w.memBytes === null ? '-' : `${Math.round(w.memBytes / 1048576)}M`]),
        el('td', {}, ['running', 'stale', 'starting'].includes(w.status) ? [restart] : []),
      ]);
    }),
  );
  $('lanes').replaceChildren(
    ...s.lanes.map((/** @type {any} */ l) =>
      el('tr', {}, [
        el('td', {}, [l.name]),
        el('td', {}, [l.kind]),
        el('td', {}, [String(l.busy)]),
        el('td', {}, [String(l.slots)]),
        el('td', {}, [l.starved ? `since ${l.starved.since}` : '-']),
      ]),
    ),
  );
  $('daemons').replaceChildren(
    ...s.daemons.map((/** @type {any} */ d) =>
      el('tr', {}, [
        el('td', {}, [d.name]),
        el('td', { class: `status-${d.status}` }, [d.status]),
        el('td', {}, [String(d.pid ?? '-')]),
        el('td', {}, [String(d.restarts)]),
        el('td', {}, [d.tickAgeMs === null ? '-' : `${age(d.tickAgeMs)} ago`]),
      ]),
    ),
  );
}

/** @param {any[]} events */
function incidentSteps(events) {
  return el(
    'ol',
    {},
    events.map((/** @type {any} */ e) => el('li', {}, [`#${e.seq} ${e.kind} ${e.data?.message ?? ''}`])),
  );
}

/** @param {number} id @param {string} status */
async function loadIncident(id, status) {
  const res = await fetch(withToken(`/api/incidents/${id}`));
  if (!res.ok) return;
  incidentCache.set(id, { status, events: await res.json() });
  scheduleRefresh();
}

let refreshTimer = 0;
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = window.setTimeout(async () => {
    refreshTimer = 0;
    const res = await fetch(withToken('/api/query'));
    if (res.ok) render(await res.json());
  }, 150);
}

/** @type {Map<string, any>} */
const charts = new Map();
/** @param {HTMLElement} box @param {string} key @param {string} title @param {any} data @param {string[]} labels */
function chart(box, key, title, data, labels) {
  const old = charts.get(key);
  if (old) return old.setData(data);
  const holder = el('div', { 'data-chart': key });
  box.append(holder);
  const opts = {
    title,
    width: Math.min(560, box.clientWidth || 560),
    height: 160,
    series: [{}, ...labels.map((label, i) => ({ label, stroke: ['#2471a3', '#d68910', '#1e8449', '#8e44ad'][i % 4] }))],
  };
  // @ts-expect-error uPlot is a global from /static/uplot.js
  charts.set(key, new uPlot(opts, data, holder));
}

async function refreshCharts() {
  const res = await fetch(withToken(`/api/samples?since=${Date.now() - 30 * 60_000}`));
  if (!res.ok) return;
  /** @type {Record<string, {t: number[], v: (number|null)[]}>} */
  const series = await res.json();
  const cpu = series.cpu;
  for (const [name, s] of Object.entries(series)) {
    const lane = /^lane:(.+):busy$/.exec(name);
    if (lane && cpu && cpu.t.length === s.t.length)
      chart(
        $('lane-charts'),
        name,
        `lane ${lane[1]}: busy workers and machine CPU %`,
        [s.t, s.v, cpu.v],
        ['busy', 'cpu %'],
      );
    else if (lane) chart($('lane-charts'), name, `lane ${lane[1]}: busy workers`, [s.t, s.v], ['busy']);
    const gpu = /^gpu:(\d+):util$/.exec(name);
    if (gpu) {
      $('gpu-box').hidden = false;
      chart($('gpu-charts'), name, `GPU ${gpu[1]}: utilization %`, [s.t, s.v], ['util %']);
    }
  }
}

function connect() {
  const src = new EventSource(withToken('/api/events'));
  const list = $('events');
  src.onopen = () => $('live').classList.add('on');
  src.onerror = () => $('live').classList.remove('on');
  src.onmessage = (m) => {
    const e = JSON.parse(m.data);
    list.prepend(
      el('li', { class: `sev-${e.severity}`, 'data-seq': String(e.seq) }, [
        `${e.ts.slice(11, 19)} #${e.seq} ${e.kind} ${e.target} ${e.data?.message ?? ''}`,
      ]),
    );
    while (list.children.length > 200) list.lastElementChild?.remove();
    scheduleRefresh();
  };
}

$('pause').addEventListener('click', () => act('/api/action', { op: 'pause' }));
$('resume').addEventListener('click', () => act('/api/action', { op: 'resume' }));
scheduleRefresh();
connect();
void refreshCharts();
window.setInterval(() => void refreshCharts(), 5000);
window.setInterval(scheduleRefresh, 5000);
