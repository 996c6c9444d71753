// The audit log, newest records last (admins only: the API refuses everyone else).
import { api } from "./api.js";
import { errorBox, h, table, when } from "./dom.js";

export async function renderAudit(main, _arg, query) {
  main.append(h("h1", null, "Audit"));
  const params = new URLSearchParams({ limit: "200" });
  for (const key of ["actor", "action", "project"]) if (query.get(key)) params.set(key, query.get(key));
  try {
    const records = await api(`/audit?${params}`);
    main.append(
      table(
        ["#", "When", "Actor", "Via", "Action", "Outcome", "Target", "Project", "From"],
        records.map((r) =>
          h(
            "tr",
            { "data-seq": r.seq },
            h("td", null, r.seq),
            h("td", null, when(r.at)),
            h("td", null, r.actor),
            h("td", null, r.via),
            h("td", null, r.action),
            h("td", { class: `outcome-${r.outcome}` }, r.outcome),
            h("td", null, r.target || ""),
            h("td", null, r.project || ""),
            h("td", null, r.source),
          ),
        ),
        { id: "audit" },
      ),
    );
  } catch (error) {
    const text = error.status === 403 ? `The audit log is for admins. ${error.message}` : error.message;
    main.append(errorBox(text, { id: "audit-error" }));
  }
}
