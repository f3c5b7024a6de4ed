// The one place the pages get their view library from: Preact with htm tagged templates (no build step).
import { h, render, Fragment } from "../vendor/preact.mjs";
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "../vendor/preact-hooks.mjs";
import htm from "../vendor/htm.mjs";

export const html = htm.bind(h);
export { Fragment, render, useCallback, useEffect, useMemo, useReducer, useRef, useState };
