// The reward graph (guide "Reward graph"): reward per episode, average reward per iteration and
// progress per episode (percentage of the track completed), drawn with uPlot (vendored).
import { html, useEffect, useRef } from "./lib.js";
import uPlot from "../vendor/uplot.mjs";

/** Points of the graph from the job's progress events (each one an iteration). */
export function graphSeries(progressEvents) {
  const episode = [], reward = [], average = [], progress = [], averageProgress = [];
  for (const event of progressEvents) {
    const rewards = event.episode_rewards || [];
    const progresses = event.episode_progress || [];
    const first = event.episodes - rewards.length;
    rewards.forEach((r, i) => {
      episode.push(first + i + 1);
      reward.push(r);
      progress.push(progresses[i] ?? null);
      // The iteration's averages sit on its last episode.
      const last = i === rewards.length - 1;
      average.push(last ? event.mean_reward : null);
      averageProgress.push(last ? event.mean_progress : null);
    });
  }
  return [episode, reward, average, progress, averageProgress];
}

export function RewardGraph({ events }) {
  const host = useRef(null);
  const plot = useRef(null);
  const data = graphSeries(events);
  useEffect(() => {
    const width = () => Math.max(300, host.current.clientWidth);
    plot.current = new uPlot(
      {
        width: width(),
        height: 320,
        scales: { x: { time: false }, "%": { range: [0, 100] } },
        axes: [
          { label: "Episode", stroke: "#9aa3b5", grid: { stroke: "#2c3342" } },
          { label: "Reward", stroke: "#9aa3b5", grid: { stroke: "#2c3342" } },
          { label: "Percentage track completion", scale: "%", side: 1, stroke: "#9aa3b5", grid: { show: false } },
        ],
        series: [
          { label: "Episode" },
          { label: "Reward per episode", stroke: "#7c5cff", points: { show: true, size: 4 }, width: 1 },
          { label: "Average reward (per iteration)", stroke: "#00d1b2", width: 2, spanGaps: true, points: { show: true, size: 6 } },
          { label: "Progress per episode (%)", stroke: "#ffb020", scale: "%", width: 1, points: { show: true, size: 4 } },
          { label: "Average progress (per iteration, %)", stroke: "#ff5a5f", scale: "%", width: 2, spanGaps: true, points: { show: true, size: 6 } },
        ],
      },
      data,
      host.current,
    );
    const resize = () => plot.current.setSize({ width: width(), height: 320 });
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.current.destroy();
    };
  }, []);
  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [events]);
  return html`<figure class="reward-graph" aria-label="Reward graph" data-points=${data[0].length}>
    <div ref=${host}></div>
    ${data[0].length === 0 && html`<figcaption class="empty">The graph fills in as training runs: the first points arrive after the first iteration.</figcaption>`}
  </figure>`;
}
