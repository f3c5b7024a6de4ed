// Sign in, sign up (with a server invitation or a race's invitation link), choose a racer alias.
import { html, useEffect, useState } from "../lib.js";
import { post } from "../api.js";
import { loadSession, session } from "../session.js";
import { ErrorNote, Field, Link, navigate } from "../ui.js";

function useForm(initial) {
  const [values, setValues] = useState(initial);
  const bind = (key) => ({ value: values[key], onInput: (e) => setValues((v) => ({ ...v, [key]: e.currentTarget.value })) });
  return [values, bind];
}

const ALIAS_HINT = "3-32 letters, digits, '-' or '_'. Your racer name on every leaderboard; once chosen it cannot change.";

export function SignIn({ next = "/" }) {
  const [values, bind] = useForm({ email: "", password: "" });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    try {
      await post("/api/auth/login", values);
      const me = await loadSession();
      navigate(me && !me.alias && me.role === "racer" ? `/alias?next=${encodeURIComponent(next)}` : next, { replace: true });
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card narrow" onSubmit=${submit} aria-labelledby="signin-title">
    <h1 id="signin-title">Sign in</h1>
    <${Field} label="Email"><input type="email" name="email" autocomplete="username" required ...${bind("email")} /></${Field}>
    <${Field} label="Password"><input type="password" name="password" autocomplete="current-password" required ...${bind("password")} /></${Field}>
    <${ErrorNote} error=${error} />
    <button class="primary" type="submit" disabled=${busy}>Sign in</button>
    <p class="hint">New here? Open the invitation link your race organizer sent you to create your account.
      After a few wrong passwords signing in pauses for a while, to keep accounts safe.</p>
  </form>`;
}

export function SignUp({ invitation = "" }) {
  const [values, bind] = useForm({ email: "", password: "", alias: "", invitation });
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    try {
      const body = { email: values.email, password: values.password, invitation: values.invitation || undefined };
      if (values.alias) body.alias = values.alias;
      await post("/api/auth/signup", body);
      await post("/api/auth/login", { email: values.email, password: values.password });
      await loadSession();
      navigate("/", { replace: true });
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<form class="card narrow" onSubmit=${submit} aria-labelledby="signup-title">
    <h1 id="signup-title">Create your account</h1>
    <${Field} label="Invitation code"><input name="invitation" ...${bind("invitation")} /></${Field}>
    <${Field} label="Email"><input type="email" name="email" autocomplete="username" required ...${bind("email")} /></${Field}>
    <${Field} label="Password" hint="At least 10 characters."><input type="password" name="password" autocomplete="new-password" required ...${bind("password")} /></${Field}>
    <${Field} label="Racer name" hint=${ALIAS_HINT}><input name="alias" autocomplete="nickname" ...${bind("alias")} /></${Field}>
    <${ErrorNote} error=${error} />
    <button class="primary" type="submit">Sign up</button>
    <p>Already racing? <${Link} href="/signin">Sign in</${Link}></p>
  </form>`;
}

/** The race's invitation link: join when signed in; otherwise sign up right here (the link is the invitation). */
export function Join({ code }) {
  const me = session();
  const [values, bind] = useForm({ email: "", password: "", alias: "" });
  const [error, setError] = useState(null);
  const [joining, setJoining] = useState(Boolean(me));
  useEffect(() => {
    if (!me) return;
    post(`/api/join/${encodeURIComponent(code)}`).then(
      (joined) => navigate(me.alias || me.role !== "racer" ? `/races/${joined.race_id}` : `/alias?next=/races/${joined.race_id}`, { replace: true }),
      (failure) => {
        setError(failure);
        setJoining(false);
      },
    );
  }, [code]);
  if (joining) return html`<p class="loading">Joining the race…</p>`;
  if (me) return html`<div class="card narrow"><h1>Join race</h1><${ErrorNote} error=${error} /><${Link} href="/races">Community races</${Link}></div>`;
  const submit = async (event) => {
    event.preventDefault();
    try {
      const body = { email: values.email, password: values.password };
      if (values.alias) body.alias = values.alias;
      const joined = await post(`/api/join/${encodeURIComponent(code)}`, body);
      await loadSession();
      navigate(values.alias ? `/races/${joined.race_id}` : `/alias?next=/races/${joined.race_id}`, { replace: true });
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<form class="card narrow" onSubmit=${submit} aria-labelledby="join-title">
    <h1 id="join-title">You're invited to race</h1>
    <p>Create your Trackside account to join this race. Already have one?
      <${Link} href=${`/signin?next=${encodeURIComponent(location.pathname)}`}>Sign in</${Link}> and open the link again.</p>
    <${Field} label="Email"><input type="email" name="email" autocomplete="username" required ...${bind("email")} /></${Field}>
    <${Field} label="Password" hint="At least 10 characters."><input type="password" name="password" autocomplete="new-password" required ...${bind("password")} /></${Field}>
    <${Field} label="Racer name" hint=${ALIAS_HINT}><input name="alias" autocomplete="nickname" required ...${bind("alias")} /></${Field}>
    <${ErrorNote} error=${error} />
    <button class="primary" type="submit">Join race</button>
  </form>`;
}

export function ChooseAlias({ next = "/" }) {
  const me = session();
  const [alias, setAlias] = useState("");
  const [error, setError] = useState(null);
  if (me && me.alias) {
    return html`<div class="card narrow"><h1>Racer name</h1><p>Your racer name is <strong>${me.alias}</strong>. It is fixed once chosen.</p>
      <${Link} href=${next}>Continue</${Link}></div>`;
  }
  const submit = async (event) => {
    event.preventDefault();
    try {
      await post("/api/auth/alias", { alias });
      await loadSession();
      navigate(next, { replace: true });
    } catch (failure) {
      setError(failure);
    }
  };
  return html`<form class="card narrow" onSubmit=${submit} aria-labelledby="alias-title">
    <h1 id="alias-title">Choose your racer name</h1>
    <p>Enter a name that identifies you on every Trackside leaderboard. Once you choose a racer name, you cannot change it.</p>
    <${Field} label="Racer name" hint=${ALIAS_HINT}><input name="alias" required value=${alias} onInput=${(e) => setAlias(e.currentTarget.value)} /></${Field}>
    <${ErrorNote} error=${error} />
    <button class="primary" type="submit">Save racer name</button>
  </form>`;
}
