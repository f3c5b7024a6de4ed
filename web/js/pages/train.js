// Create model (guide "Train a model"): name, track and direction, race type with objects or bots,
// sensors, network, algorithm, the action space, hyperparameters, the stop condition and the
// reward function; Create model starts training and opens the live training page.
import { html, useEffect, useState } from "../lib.js";
import { ApiError, get, post } from "../api.js";
import { ErrorNote, Field, Link, navigate } from "../ui.js";
import { useFetch } from "../hooks.js";
import { ALGORITHMS, NETWORKS, SENSORS } from "../workshop.js";
import { ActionSpaceEditor, actionSpaceProblems, defaultContinuous, defaultDiscrete } from "../action-space.js";
import { EXAMPLES, RewardEditor } from "../reward-editor.js";
import { TrackPicture } from "../track-picture.js";

// Console ranges (race_server/models/hyperparameters.py).
const HYPERPARAMETERS = [
  { key: "batch_size", label: "Gradient descent batch size", choices: [32, 64, 128, 256, 512], value: 64 },
  { key: "num_epochs", label: "Number of epochs", min: 3, max: 10, step: 1, value: 10 },
  { key: "lr", label: "Learning rate", min: 1e-8, max: 1e-3, step: "any", value: 0.0003 },
  { key: "beta_entropy", label: "Entropy", min: 0, max: 1, step: "any", value: 0.01, ppo: true },
  { key: "sac_alpha", label: "SAC alpha (α) value", min: 0, max: 1, step: "any", value: 0.2, sac: true },
  { key: "discount_factor", label: "Discount factor", min: 0, max: 1, step: "any", value: 0.999 },
  { key: "loss_type", label: "Loss type", choices: ["huber", "mean squared error"], value: "huber" },
  { key: "num_episodes_between_training", label: "Number of experience episodes between each policy-updating iteration", min: 5, max: 100, step: 1, value: 20 },
];
const RACE_TYPES = { TIME_TRIAL: "Time trial", OBJECT_AVOIDANCE: "Object avoidance", HEAD_TO_BOT: "Head-to-bot" };

function TrackPicker({ tracks, world, setWorld }) {
  const track = tracks.find((t) => t.track_id === world.track_id);
  return html`<fieldset><legend>Environment simulation</legend>
    <${Field} label="Track"><select value=${world.track_id} onChange=${(e) => setWorld({ ...world, track_id: e.currentTarget.value, direction: null })}>
      ${tracks.map((t) => html`<option value=${t.track_id}>${t.name}</option>`)}</select></${Field}>
    ${track && html`<div class="track-pick">
      <${TrackPicture} trackId=${track.track_id} direction=${world.direction || track.default_direction} name=${track.name} />
      <p class="hint">${track.description} Length ${track.length_m} m, width ${track.width_m} m.</p></div>`}
    ${track && track.directions.length > 1 && html`<div role="radiogroup" aria-label="Direction">
      ${track.directions.map((d) => html`<label class="choice"><input type="radio" name="direction" checked=${(world.direction || track.default_direction) === d}
        onChange=${() => setWorld({ ...world, direction: d })} />${d === "CLOCKWISE" ? "Clockwise" : "Counterclockwise"}</label>`)}</div>`}
    <div role="radiogroup" aria-label="Race type">
      ${Object.entries(RACE_TYPES).map(([k, label]) => html`<label class="choice"><input type="radio" name="race_type" checked=${world.race_type === k}
        onChange=${() => setWorld({ ...world, race_type: k })} />${label}</label>`)}</div>
    ${world.race_type === "OBJECT_AVOIDANCE" && html`<${Field} label="Number of objects"><input type="number" min="1" max="6" value=${world.number_of_obstacles}
      onInput=${(e) => setWorld({ ...world, number_of_obstacles: Number(e.currentTarget.value) })} /></${Field}>`}
    ${world.race_type === "HEAD_TO_BOT" && html`<${Field} label="Number of bot vehicles"><input type="number" min="1" max="6" value=${world.number_of_bots}
      onInput=${(e) => setWorld({ ...world, number_of_bots: Number(e.currentTarget.value) })} /></${Field}>`}
  </fieldset>`;
}

function worldJson(world) {
  const out = { track_id: world.track_id, race_type: world.race_type };
  if (world.direction) out.direction = world.direction === "CLOCKWISE" ? "cw" : "ccw";
  if (world.race_type === "OBJECT_AVOIDANCE") out.number_of_obstacles = world.number_of_obstacles;
  if (world.race_type === "HEAD_TO_BOT") out.number_of_bots = world.number_of_bots;
  return out;
}

export function CreateModel({ cloneJobId = null }) {
  const tracks = useFetch("/api/tracks");
  const list = (tracks.data && tracks.data.tracks) || [];
  const [name, setName] = useState("");
  const [world, setWorld] = useState({ track_id: "reinvent_base", direction: null, race_type: "TIME_TRIAL", number_of_obstacles: 3, number_of_bots: 3 });
  const [sensor, setSensor] = useState("FRONT_FACING_CAMERA");
  const [network, setNetwork] = useState("DEEP_CONVOLUTIONAL_NETWORK_SHALLOW");
  const [algorithm, setAlgorithm] = useState("clipped_ppo");
  const [spaceType, setSpaceType] = useState("discrete");
  const [discrete, setDiscrete] = useState(defaultDiscrete());
  const [continuous, setContinuous] = useState(defaultContinuous());
  const [hp, setHp] = useState(Object.fromEntries(HYPERPARAMETERS.map((h) => [h.key, h.value])));
  const [minutes, setMinutes] = useState(60);
  // Trackside runs the simulator here, not in a cloud: how many processes and cars it uses.
  const [workers, setWorkers] = useState(2);
  const [envs, setEnvs] = useState(4);
  const [reward, setReward] = useState(EXAMPLES["Follow the center line"]);
  const [loadReward, setLoadReward] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  // Clone: start from a finished training's settings; its weights seed the new training.
  useEffect(() => {
    if (!cloneJobId) return;
    get(`/api/jobs/${cloneJobId}`).then((job) => {
      const c = job.config;
      const meta = c.model_metadata || {};
      setName(`${job.name}-clone`.slice(0, 63));
      setSensor((meta.sensor || ["FRONT_FACING_CAMERA"])[0]);
      setNetwork(meta.neural_network || network);
      setAlgorithm(meta.training_algorithm || algorithm);
      setSpaceType(meta.action_space_type || "discrete");
      if (meta.action_space_type === "continuous") setContinuous(meta.action_space);
      else if (Array.isArray(meta.action_space)) setDiscrete(meta.action_space.map(({ steering_angle, speed }) => ({ steering_angle, speed })));
      setHp((h) => ({ ...h, ...c.hyperparameters }));
      setReward(c.reward_function);
      setLoadReward({ text: c.reward_function });
      const w = c.world || {};
      setWorld((old) => ({ ...old, track_id: w.track_id || old.track_id, race_type: w.race_type || old.race_type,
        direction: w.direction || null }));
    }, setError);
  }, [cloneJobId]);
  // SAC works with a continuous action space only (the console's rule).
  const type = algorithm === "sac" ? "continuous" : spaceType;
  const space = type === "discrete" ? discrete : continuous;
  const spaceProblems = actionSpaceProblems(type, space);

  const submit = async (event) => {
    event.preventDefault();
    setError(null);
    if (spaceProblems.length) return setError(new ApiError(422, "invalid", "Fix the action space first: " + spaceProblems[0]));
    const hyperparameters = { ...hp };
    if (algorithm === "sac") delete hyperparameters.beta_entropy; else delete hyperparameters.sac_alpha;
    const body = {
      kind: "training",
      name,
      model_metadata: {
        action_space: type === "discrete" ? discrete.map((a, index) => ({ ...a, index })) : continuous,
        action_space_type: type, sensor: [sensor], neural_network: network, training_algorithm: algorithm, version: "5",
      },
      hyperparameters,
      reward_function: reward,
      world: worldJson(world),
      stop: { max_minutes: Number(minutes) },
      options: { workers: Number(workers), envs_per_worker: Number(envs) },
    };
    if (cloneJobId) body.clone_from_job_id = cloneJobId;
    setBusy(true);
    try {
      const job = await post("/api/jobs", body);
      navigate(`/jobs/${job.id}`);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const hpField = (h) => {
    if ((h.ppo && algorithm !== "clipped_ppo") || (h.sac && algorithm !== "sac")) return null;
    const set = (v) => setHp({ ...hp, [h.key]: v });
    const control = h.choices
      ? html`<select value=${hp[h.key]} onChange=${(e) => set(typeof h.value === "number" ? Number(e.currentTarget.value) : e.currentTarget.value)}>
          ${h.choices.map((c) => html`<option value=${c}>${c}</option>`)}</select>`
      : html`<input type="number" min=${h.min} max=${h.max} step=${h.step} value=${hp[h.key]} onInput=${(e) => set(Number(e.currentTarget.value))} />`;
    return html`<${Field} label=${h.label} hint=${h.choices ? "" : `${h.min} - ${h.max}`}>${control}</${Field}>`;
  };
  return html`<div class="page workshop create-model">
    <nav class="crumbs" aria-label="Breadcrumb"><${Link} href="/models">Your models</${Link}> › Create model</nav>
    <h1>${cloneJobId ? "Clone model" : "Create model"}</h1>
    ${cloneJobId && html`<p class="hint">The new model starts from training job ${cloneJobId}'s weights; change the reward function or hyperparameters and train on.</p>`}
    <form onSubmit=${submit}>
      <fieldset><legend>Training details</legend>
        <${Field} label="Model name" hint="Letters, digits and hyphens, up to 63 characters.">
          <input required pattern="[A-Za-z0-9\\-]{1,63}" value=${name} onInput=${(e) => setName(e.currentTarget.value)} /></${Field}>
      </fieldset>
      <${TrackPicker} tracks=${list} world=${world} setWorld=${setWorld} />
      <fieldset><legend>Agent</legend>
        <${Field} label="Sensor"><select value=${sensor} onChange=${(e) => setSensor(e.currentTarget.value)}>
          ${Object.entries(SENSORS).map(([k, v]) => html`<option value=${k}>${v}</option>`)}</select></${Field}>
        <${Field} label="Neural network topology"><select value=${network} onChange=${(e) => setNetwork(e.currentTarget.value)}>
          ${Object.entries(NETWORKS).map(([k, v]) => html`<option value=${k}>${v}</option>`)}</select></${Field}>
        <div role="radiogroup" aria-label="Training algorithm">
          ${Object.entries(ALGORITHMS).map(([k, v]) => html`<label class="choice"><input type="radio" name="algorithm" checked=${algorithm === k} onChange=${() => setAlgorithm(k)} />${v}</label>`)}</div>
      </fieldset>
      <fieldset><legend>Action space</legend>
        <div role="radiogroup" aria-label="Action space type">
          ${["discrete", "continuous"].map((k) => html`<label class="choice"><input type="radio" name="space" checked=${type === k} disabled=${algorithm === "sac" && k === "discrete"}
            onChange=${() => setSpaceType(k)} />${k === "discrete" ? "Discrete action space" : "Continuous action space"}</label>`)}</div>
        ${algorithm === "sac" && html`<p class="hint">SAC works with a continuous action space only.</p>`}
        <${ActionSpaceEditor} type=${type} space=${space} onChange=${type === "discrete" ? setDiscrete : setContinuous} />
      </fieldset>
      <fieldset><legend>Reward function</legend>
        <${RewardEditor} value=${reward} replaceWith=${loadReward} onChange=${setReward} world=${worldJson(world)} />
      </fieldset>
      <details class="customizations"><summary>Hyperparameters</summary>${HYPERPARAMETERS.map(hpField)}</details>
      <details class="customizations"><summary>Simulation on this server</summary>
        <${Field} label="Simulation processes" hint="0 - 8; 0 runs the simulator inside the training process">
          <input type="number" min="0" max="8" value=${workers} onInput=${(e) => setWorkers(e.currentTarget.value)} /></${Field}>
        <${Field} label="Cars per process" hint="1 - 16"><input type="number" min="1" max="16" value=${envs} onInput=${(e) => setEnvs(e.currentTarget.value)} /></${Field}>
      </details>
      <fieldset><legend>Stop conditions</legend>
        <${Field} label="Maximum time (minutes)" hint="5 - 1440"><input type="number" min="5" max="1440" value=${minutes} onInput=${(e) => setMinutes(e.currentTarget.value)} /></${Field}>
      </fieldset>
      <${ErrorNote} error=${error} />
      <p class="page-actions"><button type="submit" class="primary" disabled=${busy}>Create model</button>
        <${Link} class="button" href="/models">Cancel</${Link}></p>
    </form>
  </div>`;
}
