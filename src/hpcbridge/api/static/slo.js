// SLOs: SLI against objective, the error budget left and the burn rate per alert window.
import { api } from "./api.js";
import { budgetBar, burnRates } from "./charts.js";
import { errorBox, h } from "./dom.js";

const POLL_MS = 15000;
const percent = (value) => (typeof value === "number" ? `${(value * 100).toFixed(2)} %` : "no data");

function card(slo) {
  return h(
    "section",
    { class: "card slo", "data-slo": slo.name },
    h("h2", null, slo.name),
    h("p", { class: "muted" }, slo.description),
    h(
      "p",
      null,
      `SLI ${percent(slo.sli)} against ${percent(slo.objective)} over ${slo.window} · ${slo.bad} bad of ${slo.total} · ${slo.alerts.length} alert(s) firing`,
    ),
    h("h3", null, "Error budget"),
    budgetBar(slo.error_budget.remaining_ratio),
    h("h3", null, "Burn rate"),
    burnRates(slo.burn_rates),
  );
}

export async function renderSlo(main, _arg, _query, ctx) {
  const list = h("div", { id: "slos" });
  main.append(h("h1", null, "SLOs"), list);
  async function refresh() {
    try {
      const report = await api("/slo");
      if (ctx.isCurrent()) list.replaceChildren(...report.slos.map(card));
    } catch (error) {
      list.replaceChildren(errorBox(error.message));
    }
  }
  await refresh();
  ctx.every(POLL_MS, refresh);
}
