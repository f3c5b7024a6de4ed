export { EditorView, keymap } from "@codemirror/view";
export { EditorState } from "@codemirror/state";
export { basicSetup } from "codemirror";
export { python } from "@codemirror/lang-python";
export { setDiagnostics, lintGutter } from "@codemirror/lint";
export { oneDark } from "@codemirror/theme-one-dark";
