// The login page: the token is checked against the API, then kept in sessionStorage.
import { api, clearToken, setToken } from "./api.js";
import { errorBox, h } from "./dom.js";

export function renderLogin(main) {
  const input = h("input", {
    id: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    placeholder: "hpcb_…",
  });
  const message = h("div", { id: "login-message" });
  const form = h(
    "form",
    { id: "login", class: "card" },
    h("h1", null, "Log in"),
    h("label", { for: "token" }, "API token (from 'hpcbridge token create')"),
    input,
    h("button", { type: "submit" }, "Log in"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    try {
      await api("/jobs?limit=1", { login: false });
      location.hash = "#/jobs";
    } catch (error) {
      clearToken();
      const why = error.status === 401 ? "That token was not accepted: check it, or create a new one." : error.message;
      message.replaceChildren(errorBox(why));
    }
  });
  main.append(form);
  input.focus();
}
