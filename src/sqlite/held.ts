// Tables held in error: which tables' changes are skipped, from which upstream transaction on,
// kept in the state table (key 'held') with the rows. See "One table's error" in applier.ts.

import { parseLsn, type Lsn } from '../upstream/lsn.js';
import type { StateTable } from './state.js';

/** A table held in error: changes of transactions committed at or after `since` are skipped. */
export interface HeldTable {
  oid: number;
  schema: string;
  name: string;
  /** The commit LSN (text) of the transaction whose change to the table failed. */
  since: string;
  error: string;
  at: string;
}

export class HeldTables {
  private held = new Map<number, HeldTable>();
  /** Held tables whose description applied again: a reload of them may bring them back. */
  readonly wantReload = new Set<number>();

  constructor(private readonly state: StateTable) {
    this.load();
  }

  list(): HeldTable[] {
    return [...this.held.values()];
  }

  get(oid: number): HeldTable | undefined {
    return this.held.get(oid);
  }

  /** Holds a table, in memory: save() writes it. */
  put(h: HeldTable): void {
    this.held.set(h.oid, h);
  }

  /** Reads the holds back from the state table (after a rollback, or at start). */
  load(): void {
    const v = this.state.get('held');
    this.held = new Map((v ? (JSON.parse(v) as HeldTable[]) : []).map((h) => [h.oid, h]));
  }

  /** Writes the holds into the state table, in the open SQLite transaction (if any). */
  save(): void {
    this.state.set('held', JSON.stringify(this.list()));
  }

  /** Whether a change to table `oid` in the transaction committed at `txnFinal` is skipped. */
  isHeld(oid: number, txnFinal: Lsn): boolean {
    const h = this.held.get(oid);
    return h !== undefined && txnFinal >= parseLsn(h.since);
  }

  /** Releases a held table within the open transaction (its whole content is being reloaded, or it was dropped). */
  release(oid: number): void {
    if (!this.held.delete(oid)) return;
    this.wantReload.delete(oid);
    this.save();
  }
}
