import type { Item } from '../tensor/types.js';
import type { LineageNode } from './lineage.js';

export interface Waiting {
  node: LineageNode;
  item: Item;
}

/**
 * One request's items of one stage: how many the stage holds, and those
 * waiting for room, first in first out. A request of 100 000 rows keeps most
 * of them here, so taking from the front must not move the rest (Array.shift
 * does, and made such a request quadratic).
 */
export class Lane {
  active = 0;
  private items: Waiting[] = [];
  private head = 0;

  get waiting(): number { return this.items.length - this.head; }

  push(w: Waiting): void { this.items.push(w); }

  /** Back to the front: the item was taken but could not be submitted. */
  putBack(w: Waiting): void {
    if (this.head > 0) this.items[--this.head] = w;
    else this.items.unshift(w);
  }

  take(): Waiting | undefined {
    if (this.head >= this.items.length) return undefined;
    const w = this.items[this.head];
    this.items[this.head++] = undefined as unknown as Waiting;
    // Drop the taken prefix now and then, so a long request does not hold every item it has served.
    if (this.head >= 4096 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return w;
  }

  clear(): void { this.items = []; this.head = 0; }
}
