// The app shell: navigation, the signed-in user, and which page an address shows.
import { html, render, useEffect, useState } from "./lib.js";
import { loadSession, session, signOut, watchSession } from "./session.js";
import { Link, navigate, onNavigate } from "./ui.js";
import { ChooseAlias, Join, SignIn, SignUp } from "./pages/account.js";
import { RaceCards } from "./pages/races.js";
import { EnterRace, RacePage } from "./pages/race.js";
import { LivePage } from "./pages/live.js";
import { CreateRace } from "./pages/create-race.js";
import { ManageRaces } from "./pages/manage.js";
import { ModelPage, ModelsList } from "./pages/models.js";
import { ImportModel } from "./pages/model-import.js";
import { CreateModel } from "./pages/train.js";
import { JobPage } from "./pages/job.js";
import { AccountPage } from "./pages/tokens.js";
import { FleetPage } from "./pages/fleet.js";
import { TimekeeperPage } from "./pages/timekeeper.js";

function route(me) {
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const q = new URLSearchParams(location.search);
  const next = q.get("next") || "/races";
  let m;
  // The old status page's address (a race's viewer link) still works: it opens the LIVE page.
  if (path === "/" && q.get("race")) return html`<${LivePage} raceId=${Number(q.get("race"))} viewer=${q.get("viewer")} />`;
  if ((m = path.match(/^\/join\/([^/]+)$/))) return html`<${Join} code=${decodeURIComponent(m[1])} />`;
  if (path === "/signup") return html`<${SignUp} invitation=${q.get("invitation") || ""} />`;
  if ((m = path.match(/^\/races\/(\d+)\/live$/))) return html`<${LivePage} raceId=${Number(m[1])} viewer=${q.get("viewer")} />`;
  if (!me) return html`<${SignIn} next=${path === "/" || path === "/signin" ? next : path + location.search} />`;
  if (path === "/signin") return html`<${SignIn} next=${next} />`;
  if (path === "/alias") return html`<${ChooseAlias} next=${next} />`;
  if (path === "/" || path === "/races") return html`<${RaceCards} />`;
  if ((m = path.match(/^\/races\/(\d+)$/))) return html`<${RacePage} raceId=${Number(m[1])} />`;
  if ((m = path.match(/^\/races\/(\d+)\/enter$/))) return html`<${EnterRace} raceId=${Number(m[1])} />`;
  if ((m = path.match(/^\/races\/(\d+)\/timekeeper$/))) return html`<${TimekeeperPage} raceId=${Number(m[1])} />`;
  if (path === "/manage") return html`<${ManageRaces} />`;
  if (path === "/fleet") return html`<${FleetPage} />`;
  if (path === "/manage/new") return html`<${CreateRace} />`;
  if ((m = path.match(/^\/manage\/(\d+)\/edit$/))) return html`<${CreateRace} raceId=${Number(m[1])} />`;
  if (path === "/models") return html`<${ModelsList} />`;
  if (path === "/models/import") return html`<${ImportModel} />`;
  if (path === "/models/new") return html`<${CreateModel} cloneJobId=${Number(q.get("clone")) || null} />`;
  if ((m = path.match(/^\/models\/(\d+)$/))) return html`<${ModelPage} modelId=${Number(m[1])} key=${m[1]} />`;
  if ((m = path.match(/^\/jobs\/(\d+)$/))) return html`<${JobPage} jobId=${Number(m[1])} key=${m[1]} />`;
  if (path === "/account") return html`<${AccountPage} />`;
  return html`<div class="page"><h1>Page not found</h1><p><${Link} href="/">Go to Trackside home</${Link}></p></div>`;
}

function Nav({ me }) {
  const out = async () => {
    await signOut();
    navigate("/signin");
  };
  return html`<header class="topbar">
    <${Link} class="brand" href="/">Trackside</${Link}>
    <nav aria-label="Main">
      ${me && html`<${Link} href="/races">Community races</${Link}><${Link} href="/models">Your models</${Link}>`}
      ${me && me.role === "organizer" && html`<${Link} href="/manage">Manage races</${Link}><${Link} href="/manage/new">Create race</${Link}><${Link} href="/fleet">Fleet</${Link}>`}
    </nav>
    <div class="account">
      ${me
        ? html`<span class="who" title=${me.email}>${me.alias || me.email}${me.role === "organizer" ? " (organizer)" : ""}</span>
            ${!me.alias && me.role === "racer" && html`<${Link} href="/alias">Choose racer name</${Link}>`}
            <${Link} href="/account">Account</${Link}>
            <button type="button" onClick=${out}>Sign out</button>`
        : html`<${Link} href="/signin">Sign in</${Link}>`}
    </div>
  </header>`;
}

function App() {
  const [, setTick] = useState(0);
  const [me, setMe] = useState(session());
  useEffect(() => onNavigate(() => setTick((t) => t + 1)), []);
  useEffect(() => watchSession((who) => setMe(who)), []);
  return html`<${Nav} me=${me} /><main id="main">${route(me)}</main>`;
}

loadSession()
  .catch(() => null)
  .finally(() => {
    const root = document.getElementById("app");
    root.textContent = ""; // the static "Loading…" line; Preact adds to a container rather than replacing it
    render(html`<${App} />`, root);
  });
