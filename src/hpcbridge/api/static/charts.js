// Small charts as inline SVG (no library): an attempts timeline, an error-budget bar and
// burn rates per alert window. Colours come from classes in style.css.
import { seconds, svg } from "./dom.js";

const WIDTH = 600;
const LABEL_W = 110;

function frame(height, label, className) {
  return svg("svg", {
    class: `chart ${className}`,
    viewBox: `0 0 ${WIDTH} ${height}`,
    width: "100%",
    role: "img",
    "aria-label": label,
  });
}

// One row per attempt: a bar from its submission to its end (or now, while it runs).
export function attemptsTimeline(attempts, now) {
  const rowH = 24;
  const chart = frame(rowH * attempts.length + 24, "attempts timeline", "timeline");
  if (!attempts.length) return chart;
  const start = (a) => a.submitted_at ?? a.created_at;
  const end = (a) => a.ended_at ?? now;
  const t0 = Math.min(...attempts.map(start));
  const span = Math.max(1, Math.max(...attempts.map(end)) - t0);
  const x = (t) => LABEL_W + ((t - t0) / span) * (WIDTH - LABEL_W - 10);
  attempts.forEach((attempt, i) => {
    const y = i * rowH + 4;
    const bar = svg("rect", {
      class: `bar attempt-${attempt.state}`,
      x: x(start(attempt)),
      y,
      width: Math.max(2, x(end(attempt)) - x(start(attempt))),
      height: rowH - 8,
      "data-attempt": attempt.number,
    });
    bar.append(svg("title", null, `attempt ${attempt.number}: ${attempt.state}, ${seconds(end(attempt) - start(attempt))}`));
    chart.append(svg("text", { x: 4, y: y + rowH - 11 }, `#${attempt.number} ${attempt.state}`), bar);
  });
  chart.append(svg("text", { x: LABEL_W, y: rowH * attempts.length + 18, class: "axis" }, `0 – ${seconds(span)}`));
  return chart;
}

// How much of the error budget is left (0–100 %; an overspent budget shows empty).
export function budgetBar(remainingRatio) {
  const chart = frame(40, "error budget remaining", "budget");
  const known = typeof remainingRatio === "number";
  const left = known ? Math.min(1, Math.max(0, remainingRatio)) : 0;
  const full = WIDTH - LABEL_W - 10;
  chart.append(
    svg("text", { x: 4, y: 25 }, "budget left"),
    svg("rect", { class: "track", x: LABEL_W, y: 8, width: full, height: 24 }),
    svg("rect", { class: `bar ${left < 0.25 ? "low" : "fine"}`, x: LABEL_W, y: 8, width: full * left, height: 24 }),
    svg("text", { x: LABEL_W + 6, y: 25, class: "inside" }, known ? `${(remainingRatio * 100).toFixed(1)} %` : "no data"),
  );
  return chart;
}

// Burn rate per window: 1 spends the budget exactly over the SLO's window (the dashed line).
export function burnRates(rates) {
  const windows = Object.keys(rates);
  const rowH = 26;
  const chart = frame(rowH * windows.length + 24, "burn rate per window", "burn");
  const values = windows.map((w) => rates[w]).filter((v) => typeof v === "number");
  const top = Math.max(2, ...values) * 1.1;
  const full = WIDTH - LABEL_W - 10;
  windows.forEach((window, i) => {
    const rate = rates[window];
    const y = i * rowH + 4;
    chart.append(svg("text", { x: 4, y: y + 15 }, window));
    if (typeof rate === "number") {
      chart.append(
        svg("rect", { class: `bar ${rate > 1 ? "low" : "fine"}`, x: LABEL_W, y, width: Math.max(1, (rate / top) * full), height: rowH - 8, "data-window": window }),
        svg("text", { x: LABEL_W + Math.max(1, (rate / top) * full) + 4, y: y + 15, class: "value" }, rate.toFixed(2)),
      );
    } else {
      chart.append(svg("text", { x: LABEL_W + 4, y: y + 15, class: "value" }, "no data"));
    }
  });
  const one = LABEL_W + full / top;
  chart.append(
    svg("line", { class: "threshold", x1: one, x2: one, y1: 0, y2: rowH * windows.length + 4 }),
    svg("text", { x: one - 4, y: rowH * windows.length + 18, class: "axis" }, "1×"),
  );
  return chart;
}
