// A bounded queue that is fair between agents: one per chain in front of its simulator.
//
// Each agent has its own sub-queue; when a slot frees, the agents with waiting work are served in
// turn (round robin), one job each. An agent that queues forty 20-call bundles therefore delays
// another agent's single simulation by at most the job running now plus one of its own, instead of
// by all forty (what one first-in-first-out queue per chain did). Bounds: jobs queued or running per
// agent, and in all; past either, 503 + Retry-After at once, before any work.
//
// A job is one request (a simulation or a bundle of at most MAX_BUNDLE calls), so the unit of
// fairness is bounded too. In memory, per process: each replica has its own simulators.
import { ServiceError } from "../errors.js";

export interface FairQueueOptions {
  /** Jobs run at once (1 for a simulator that serialises anyway, like the anvil fork). */
  concurrency: number;
  /** Jobs queued or running per agent. */
  perAgent: number;
  /** Jobs queued or running in all. */
  max: number;
}

interface Job {
  run: () => void;
}

export class FairQueue {
  private readonly waiting = new Map<string, Job[]>();
  /** Agents with waiting jobs, in the order they are served next. */
  private readonly turn: string[] = [];
  private readonly perAgent = new Map<string, number>();
  private running = 0;
  private total = 0;
  /** Agents in the order their jobs started (bounded; for operators' metrics and tests). */
  readonly started: string[] = [];

  constructor(private readonly opts: FairQueueOptions) {}

  /** Jobs queued or running, in all and for one agent. */
  size(agentId?: string): number {
    return agentId === undefined ? this.total : (this.perAgent.get(agentId) ?? 0);
  }

  /** Jobs waiting for a slot (not running). */
  waitingCount(agentId?: string): number {
    if (agentId !== undefined) return this.waiting.get(agentId)?.length ?? 0;
    let n = 0;
    for (const q of this.waiting.values()) n += q.length;
    return n;
  }

  /** Runs `fn` in `agentId`'s turn; rejects with 503 at once when a bound is reached. */
  run<T>(agentId: string, fn: () => Promise<T>): Promise<T> {
    const mine = this.perAgent.get(agentId) ?? 0;
    if (mine >= this.opts.perAgent) {
      return Promise.reject(full(`This agent already has ${mine} simulations queued or running; retry shortly.`, "simulation_queue_full"));
    }
    if (this.total >= this.opts.max) {
      return Promise.reject(full("The simulation queue is full; retry shortly.", "simulation_queue_full"));
    }
    this.perAgent.set(agentId, mine + 1);
    this.total += 1;
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        run: () => {
          this.running += 1;
          this.started.push(agentId);
          if (this.started.length > 10_000) this.started.splice(0, 5_000);
          Promise.resolve()
            .then(fn)
            .then(resolve, reject)
            .finally(() => {
              this.running -= 1;
              this.total -= 1;
              const left = (this.perAgent.get(agentId) ?? 1) - 1;
              if (left === 0) this.perAgent.delete(agentId);
              else this.perAgent.set(agentId, left);
              this.pump();
            });
        },
      };
      const q = this.waiting.get(agentId);
      if (q) q.push(job);
      else {
        this.waiting.set(agentId, [job]);
        this.turn.push(agentId);
      }
      this.pump();
    });
  }

  /** Starts waiting jobs while slots are free, one per agent in turn. */
  private pump(): void {
    while (this.running < this.opts.concurrency && this.turn.length > 0) {
      const agentId = this.turn.shift()!;
      const q = this.waiting.get(agentId)!;
      const job = q.shift()!;
      // An agent with more work goes to the back of the line.
      if (q.length > 0) this.turn.push(agentId);
      else this.waiting.delete(agentId);
      job.run();
    }
  }
}

const full = (detail: string, code: string) => new ServiceError(code, 503, detail, { transient: true, retryAfterSeconds: 1 });
