// Jobs the token may see, newest first, with filters kept in the URL and live state.
import { API, api } from "./api.js";
import { errorBox, h, stateBadge, table, when } from "./dom.js";

const POLL_MS = 2000;
const EXAMPLE = {
  apiVersion: "hpcbridge/v1",
  kind: "Job",
  name: "hello",
  project: "default",
  command: ["sh", "-c", "echo hello from the dashboard"],
};

let states = null;

// The job states, from the API's own OpenAPI document (one list, never copied here).
async function jobStates() {
  if (states === null) {
    try {
      const document = await (await fetch(`${API}/openapi.json`)).json();
      states = document.components.schemas.JobState.enum;
    } catch {
      states = [];
    }
  }
  return states;
}

function filters(query, choices) {
  const state = h("select", { name: "state", id: "filter-state" }, h("option", { value: "" }, "any state"));
  for (const name of choices) state.append(h("option", { value: name }, name));
  state.value = query.get("state") || "";
  const project = h("input", { name: "project", id: "filter-project", placeholder: "project", value: query.get("project") || "" });
  const name = h("input", { name: "name", id: "filter-name", placeholder: "name", value: query.get("name") || "" });
  const form = h("form", { id: "filters", class: "filters" }, state, project, name, h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) next.set(key, String(value).trim());
    location.hash = `#/jobs?${next}`;
  });
  return form;
}

function submitForm(onSubmitted) {
  const spec = h("textarea", { id: "submit-spec", rows: 8, spellcheck: "false" });
  spec.value = JSON.stringify(EXAMPLE, null, 2);
  const message = h("div", { id: "submit-message" });
  const form = h(
    "form",
    { id: "submit" },
    h("label", { for: "submit-spec" }, "Job spec (JSON, as in a spec file)"),
    spec,
    h("button", { type: "submit" }, "Submit"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let document;
    try {
      document = JSON.parse(spec.value);
    } catch (error) {
      message.replaceChildren(errorBox(`The spec is not JSON: ${error.message}. Fix it and submit again.`));
      return;
    }
    try {
      const job = await api("/jobs", { method: "POST", json: document });
      message.replaceChildren(
        h("p", { class: "ok" }, "Submitted ", h("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}` }, job.job_id)),
      );
      onSubmitted();
    } catch (error) {
      message.replaceChildren(errorBox(error.message));
    }
  });
  return h("details", { id: "submit-panel", class: "card" }, h("summary", null, "Submit a job"), form);
}

function row(job) {
  return h(
    "tr",
    { "data-job-id": job.job_id, "data-state": job.state },
    h("td", null, h("a", { href: `#/jobs/${encodeURIComponent(job.job_id)}` }, job.job_id)),
    h("td", { class: "name" }, job.name),
    h("td", null, job.project),
    h("td", null, job.owner),
    h("td", null, stateBadge(job.state)),
    h("td", null, job.attempt_count),
    h("td", null, job.reason || ""),
    h("td", null, when(job.created_at)),
  );
}

export async function renderJobs(main, _arg, query, ctx) {
  const body = h("tbody");
  const list = table(["Job", "Name", "Project", "Owner", "State", "Attempts", "Reason", "Created"], [], { id: "jobs" });
  list.querySelector("tbody").replaceWith(body);
  const status = h("p", { class: "muted", id: "jobs-status" });
  const params = new URLSearchParams({ limit: "100" });
  for (const key of ["state", "project", "name"]) if (query.get(key)) params.set(key, query.get(key));

  async function refresh() {
    try {
      const page = await api(`/jobs?${params}`);
      if (!ctx.isCurrent()) return;
      body.replaceChildren(...page.items.map(row));
      status.replaceChildren(
        page.items.length ? `${page.items.length} job(s), updated ${when(Date.now() / 1000)}` : "No jobs match.",
      );
    } catch (error) {
      status.replaceChildren(errorBox(error.message));
    }
  }

  main.append(h("h1", null, "Jobs"), submitForm(refresh), filters(query, await jobStates()), status, list);
  await refresh();
  ctx.every(POLL_MS, refresh);
}
