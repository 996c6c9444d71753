// The dashboard's router: #/page/argument?query, one page module each, polling stopped
// when the page changes. Without a token every page is the login page.
import { clearToken, token } from "./api.js";
import { errorBox } from "./dom.js";
import { renderAudit } from "./audit.js";
import { renderJob } from "./job.js";
import { renderJobs } from "./jobs.js";
import { renderLogin } from "./login.js";
import { renderNodes } from "./nodes.js";
import { renderSlo } from "./slo.js";

const PAGES = {
  login: renderLogin,
  jobs: (main, arg, query, ctx) =>
    arg ? renderJob(main, decodeURIComponent(arg), ctx) : renderJobs(main, arg, query, ctx),
  slo: renderSlo,
  nodes: renderNodes,
  audit: renderAudit,
};

let timers = [];
let generation = 0;

function route() {
  const [path, search = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [page, ...rest] = path.split("/");
  return { page: page || "jobs", arg: rest.join("/"), query: new URLSearchParams(search) };
}

// Repeat `fn` every `ms` until the page changes; a slow answer never overlaps the next.
function every(ms, fn) {
  const mine = generation;
  const tick = async () => {
    if (mine !== generation) return;
    try {
      await fn();
    } catch (error) {
      console.warn("refresh failed:", error); // the next tick tries again
    } finally {
      if (mine === generation) timers.push(setTimeout(tick, ms));
    }
  };
  timers.push(setTimeout(tick, ms));
}

async function show() {
  generation += 1;
  timers.forEach(clearTimeout);
  timers = [];
  const { page, arg, query } = route();
  if (!token() && page !== "login") {
    location.hash = "#/login";
    return;
  }
  const render = PAGES[page] || PAGES.jobs;
  document.getElementById("nav").hidden = page === "login";
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", link.getAttribute("href") === `#/${page}`);
  }
  // A fresh container per visit: a slow page that answers after the user moved on only
  // fills its own detached container.
  const main = document.getElementById("main");
  const container = document.createElement("div");
  main.replaceChildren(container);
  main.dataset.page = page;
  const mine = generation;
  try {
    await render(container, arg, query, { every, isCurrent: () => mine === generation });
  } catch (error) {
    container.append(errorBox(error.message));
  }
}

document.getElementById("logout").addEventListener("click", () => {
  clearToken();
  location.hash = "#/login";
});
window.addEventListener("hashchange", show);
show();
