// Small inline SVG icons: emoji fonts are missing on many Linux machines (and in OBS), SVG never is.
import { html } from "./lib.js";

export const CheckeredFlag = () => html`<svg class="icon" viewBox="0 0 24 24" width="28" height="28" aria-hidden="true">
  <path d="M4 2v20" stroke="currentColor" stroke-width="2" />
  <rect x="5" y="3" width="16" height="11" fill="#fff" />
  <path fill="#111" d="M5 3h4v4H5zM13 3h4v4h-4zM9 7h4v4H9zM17 7h4v4h-4zM5 11h4v3H5zM13 11h4v3h-4z" />
</svg>`;

export const Trophy = () => html`<svg class="icon" viewBox="0 0 24 24" width="28" height="28" aria-hidden="true">
  <path fill="#ffcc33" d="M7 3h10v3h3v2a4 4 0 0 1-4 4h-.4A5 5 0 0 1 13 14.9V18h3v3H8v-3h3v-3.1A5 5 0 0 1 8.4 12H8a4 4 0 0 1-4-4V6h3zm10 5v2a2 2 0 0 0 1-2zM6 8a2 2 0 0 0 1 2V8z" />
</svg>`;
