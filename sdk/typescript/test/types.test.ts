// Compile-time checks (this file must type-check for the suite to build): the client's arguments
// and answers are the generated schema's types, so what the schema forbids does not compile.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { EventInput, Item, ItemInput, Shelfwise, components } from "@shelfwise/client";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(verdict: Equal<A, B>): boolean => verdict;

export function contract(shelfwise: Shelfwise): void {
  same<ItemInput, components["schemas"]["ItemIn"]>(true);
  same<Item, components["schemas"]["ItemOut"]>(true);
  same<Awaited<ReturnType<Shelfwise["events"]["send"]>>, components["schemas"]["EventBatchResult"]>(true);

  // @ts-expect-error an item needs its item_id
  void shelfwise.items.upsert({ title: "no id" });
  // @ts-expect-error unknown fields are refused by the API, and by the types
  void shelfwise.items.batch([{ item_id: "a", colour: "red" }]);
  // @ts-expect-error an id is a string, never a number
  const event: EventInput = { customer_id: 1, item_id: "i", type: "view" };
  void event;
  // @ts-expect-error algorithms are the schema's enum
  void shelfwise.models.train({ algorithm: "magic" });
  // @ts-expect-error model versions are numbers
  void shelfwise.models.promote("2");
}

test("the contract above compiles (see tsconfig.test.json)", () => {
  assert.equal(typeof contract, "function");
});
