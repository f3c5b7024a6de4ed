// Who is signed in (GET /api/auth/me), shared by every page.
import { ApiError, get, post } from "./api.js";

let current; // undefined: not asked yet; null: signed out
const watchers = new Set();

export async function loadSession() {
  try {
    current = await get("/api/auth/me");
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    current = null;
  }
  watchers.forEach((fn) => fn(current));
  return current;
}
export const session = () => current;
export function watchSession(fn) {
  watchers.add(fn);
  return () => watchers.delete(fn);
}
export async function signOut() {
  await post("/api/auth/logout").catch(() => {});
  current = null;
  watchers.forEach((fn) => fn(current));
}
