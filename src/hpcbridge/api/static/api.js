// Calls to /api/v1 with the bearer token kept in sessionStorage (gone with the tab).
const TOKEN_KEY = "hpcbridge.token";
export const API = "/api/v1";

export const token = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (value) => sessionStorage.setItem(TOKEN_KEY, value);
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// One request; a problem+json answer becomes an ApiError carrying its detail (what went
// wrong and the fix). A 401 means the token no longer works: back to the login page
// (unless `login` is false: the login page checks a token itself).
export async function api(path, { method = "GET", json, headers = {}, login = true } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const current = token();
  if (current) sent.Authorization = `Bearer ${current}`;
  let body;
  if (json !== undefined) {
    sent["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(`${API}${path}`, { method, headers: sent, body });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const problem = await response.json();
      detail = problem.detail || problem.title || detail;
    } catch {
      // not JSON: keep the status text
    }
    if (response.status === 401 && login) {
      clearToken();
      location.hash = "#/login";
    }
    throw new ApiError(response.status, detail);
  }
  return response.status === 204 ? null : response.json();
}
