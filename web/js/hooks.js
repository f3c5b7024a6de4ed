// Hooks shared by the pages: the race feed, racer names, a ticking clock, the signed-in user.
import { useEffect, useReducer, useRef, useState } from "./lib.js";
import { get } from "./api.js";
import { RaceSocket } from "./race-socket.js";
import { initialRaceState, reduceRace } from "./race-state.js";

/** The race's live state and its socket (for commands). */
export function useRace(raceId, viewer = null) {
  const [state, dispatch] = useReducer(reduceRace, initialRaceState);
  const socketRef = useRef(null);
  useEffect(() => {
    const socket = new RaceSocket(raceId, {
      viewer,
      onEvent: dispatch,
      onStatus: (status) => dispatch({ type: "_connection", status }),
    });
    socketRef.current = socket;
    socket.connect();
    // Tests and the broadcast operator can read where the stream is.
    window.__raceSocket = socket;
    return () => socket.close();
  }, [raceId, viewer]);
  return [state, socketRef];
}

/** user id → alias for this race (racers see aliases only; organizers also emails). */
export function useRacers(raceId, viewer = null, refreshKey = 0) {
  const [racers, setRacers] = useState([]);
  useEffect(() => {
    let gone = false;
    const headers = viewer ? { Authorization: `Bearer ${viewer}` } : {};
    fetch(`/api/races/${raceId}/racers`, { headers, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : { racers: [] }))
      .then((data) => !gone && setRacers(data.racers))
      .catch(() => {});
    return () => {
      gone = true;
    };
  }, [raceId, viewer, refreshKey]);
  return racers;
}

export function namer(racers, leaderboard = []) {
  const names = new Map(racers.map((r) => [r.user_id, r.alias]));
  for (const row of leaderboard) if (row.racer_name) names.set(row.racer_id, row.racer_name);
  return (id) => (id === null || id === undefined ? "" : names.get(id) || `racer ${id}`);
}

/** Re-render every `ms` (countdowns, time remaining). */
export function useTick(ms = 250) {
  const [, setT] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setT((t) => t + 1), ms);
    return () => clearInterval(timer);
  }, [ms]);
}

export function useFetch(path, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [version, setVersion] = useState(0);
  useEffect(() => {
    let gone = false;
    setState((s) => ({ ...s, loading: true }));
    get(path).then(
      (data) => !gone && setState({ data, error: null, loading: false }),
      (error) => !gone && setState({ data: null, error, loading: false }),
    );
    return () => {
      gone = true;
    };
  }, [path, version, ...deps]);
  return { ...state, reload: () => setVersion((v) => v + 1) };
}

/** The Fleet's car assigned to this race (then it runs on the physical track), null for none, or
 * undefined while unknown. Only organizers may read the fleet: others always get null. */
export function useAssignedCar(raceId, organizer = true) {
  const [car, setCar] = useState(organizer ? undefined : null);
  useEffect(() => {
    if (!organizer) return;
    get("/api/fleet").then((data) => setCar(data.cars.find((c) => c.race_id === raceId) || null), () => setCar(null));
  }, [raceId, organizer]);
  return car;
}
