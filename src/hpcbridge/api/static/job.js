// One job: what it is, why it is where it is (the why endpoint: reason, checkpoint, cost),
// its attempts as a timeline, its events and the tail of its logs; live until it ends.
import { api } from "./api.js";
import { attemptsTimeline } from "./charts.js";
import { errorBox, h, seconds, stateBadge, table, when } from "./dom.js";

const POLL_MS = 2000;
const TAIL = 100;

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "").flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

function summary(job) {
  return facts([
    ["State", stateBadge(job.state)],
    ["Name", job.name],
    ["Project", job.project],
    ["Owner", job.owner],
    ["Backend", job.cluster ? `${job.backend} (${job.cluster})` : job.backend],
    ["Attempts", String(job.attempt_count)],
    ["Reason", job.reason],
    ["Failure class", job.failure_class],
    ["Exit code", job.exit_code === null ? null : String(job.exit_code)],
    ["Created", when(job.created_at)],
    ["Started", job.started_at ? when(job.started_at) : null],
    ["Finished", job.finished_at ? when(job.finished_at) : null],
  ]);
}

function why(found, job) {
  const failed = ["failed", "lost", "retry_wait", "cancelled"].includes(job.state);
  return h(
    "section",
    { id: "why", class: "card" },
    h("h2", null, failed ? "Why it failed" : "Where it stands"),
    h("p", { class: "summary" }, found.summary),
    facts([
      ["Scheduler", found.scheduler_reason],
      ["Exit", found.exit],
      ["Nodes", (found.nodes || []).join(", ")],
      ["Lost work", found.lost_work],
      ["Checkpoint", found.checkpoint || "none saved"],
      ["Cost", found.cost || "not known"],
      ["Next step", found.next_step],
      ["Runbook", found.runbook],
    ]),
    (found.actions || []).length ? h("ul", { class: "actions" }, found.actions.map((a) => h("li", null, a))) : null,
  );
}

function attempts(list) {
  const now = Date.now() / 1000;
  return h(
    "section",
    { id: "attempts", class: "card" },
    h("h2", null, "Attempts"),
    list.length ? attemptsTimeline(list, now) : h("p", { class: "muted" }, "No attempt yet."),
    list.length
      ? table(
          ["#", "State", "Native id", "Nodes", "Run time", "Exit", "Reason"],
          list.map((a) =>
            h(
              "tr",
              null,
              h("td", null, a.number),
              h("td", null, stateBadge(a.state)),
              h("td", null, a.native_id || ""),
              h("td", null, (a.nodes || []).join(", ")),
              h("td", null, a.started_at ? seconds((a.ended_at ?? now) - a.started_at) : "–"),
              h("td", null, a.exit_code ?? (a.signal ? `signal ${a.signal}` : "")),
              h("td", null, a.reason || a.failure_class || ""),
            ),
          ),
        )
      : null,
  );
}

function events(list) {
  return h(
    "section",
    { id: "events", class: "card" },
    h("h2", null, "Events"),
    table(
      ["#", "Time", "Kind", "State", "Reason", "Actor"],
      list.map((e) =>
        h(
          "tr",
          null,
          h("td", null, e.seq),
          h("td", null, when(e.time)),
          h("td", null, e.kind),
          h("td", null, e.to_state ? `${e.from_state || "–"} → ${e.to_state}` : ""),
          h("td", null, e.reason || ""),
          h("td", null, e.actor),
        ),
      ),
    ),
  );
}

async function logTail(jobId, stream) {
  try {
    const tail = await api(`/jobs/${encodeURIComponent(jobId)}/logs?stream=${stream}&tail=${TAIL}`);
    const text = tail.lines.length ? tail.lines.join("\n") : tail.exists ? "(empty)" : "(no file yet)";
    return h("div", null, h("h3", null, `${stream} (attempt ${tail.attempt})`), h("pre", { id: `log-${stream}`, class: "log" }, text));
  } catch (error) {
    return h("div", null, h("h3", null, stream), h("p", { class: "muted" }, error.message));
  }
}

export async function renderJob(main, jobId, ctx) {
  const title = h("h1", null, `Job ${jobId}`);
  const content = h("div", { id: "job" });
  main.append(h("p", null, h("a", { href: "#/jobs" }, "← all jobs")), title, content);

  async function refresh() {
    let job;
    try {
      job = await api(`/jobs/${encodeURIComponent(jobId)}`);
    } catch (error) {
      // Another project's job answers 404 like a missing one: the page cannot tell them apart.
      const heading = error.status === 404 ? "Not found" : `Error ${error.status}`;
      content.replaceChildren(h("h2", { id: "not-found" }, heading), errorBox(error.message));
      return false;
    }
    const [found, tried, history, stdout, stderr] = await Promise.all([
      api(`/jobs/${encodeURIComponent(jobId)}/why`).catch((error) => ({ summary: error.message })),
      api(`/jobs/${encodeURIComponent(jobId)}/attempts`),
      api(`/jobs/${encodeURIComponent(jobId)}/events`),
      logTail(jobId, "stdout"),
      logTail(jobId, "stderr"),
    ]);
    if (!ctx.isCurrent()) return false;
    title.replaceChildren(`Job ${job.job_id} · ${job.name}`);
    content.replaceChildren(
      h("section", { id: "summary", class: "card", "data-state": job.state }, summary(job)),
      why(found, job),
      attempts(tried),
      h("section", { id: "logs", class: "card" }, h("h2", null, "Log tail"), stdout, stderr),
      events(history),
    );
    return !["succeeded", "failed", "cancelled"].includes(job.state);
  }

  if (await refresh()) {
    // Keep following until it ends (one last refresh shows the final state).
    let live = true;
    ctx.every(POLL_MS, async () => {
      if (live) live = await refresh();
    });
  }
}
