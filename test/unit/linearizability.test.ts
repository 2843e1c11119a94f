// The history checker (test/helpers/linearizability.ts) must itself be right: it accepts histories
// that some order of their operations explains, and rejects those none does, including the ones
// the history test exists to catch (a paid order read as expired, "sold out" while a seat was free).
import { describe, expect, test } from 'bun:test';
import { checkLinearizable, type Model, type Operation } from '../helpers/linearizability.ts';
import { earlyExpiries, saleModel, type SaleInput, type SaleOp, type SaleOutput } from '../helpers/sale-model.ts';

type RegisterOp = { kind: 'write'; value: number } | { kind: 'read' };
const register: Model<number, RegisterOp, number | null> = {
  init: 0,
  step: (state, input, output) => (input.kind === 'write' ? [input.value] : output === state ? [state] : []),
  key: (state) => String(state),
};
const op = <I, O>(input: I, output: O, start: number, end: number): Operation<I, O> => ({ input, output, start, end });

describe('the linearizability checker', () => {
  test('accepts a read that overlaps a write and sees either value', () => {
    const history = [
      op<RegisterOp, number | null>({ kind: 'write', value: 1 }, null, 0, 10),
      op<RegisterOp, number | null>({ kind: 'read' }, 1, 5, 6),
    ];
    expect(checkLinearizable(register, history).ok).toBe(true);
    const old = [
      op<RegisterOp, number | null>({ kind: 'write', value: 1 }, null, 0, 10),
      op<RegisterOp, number | null>({ kind: 'read' }, 0, 5, 6),
    ];
    expect(checkLinearizable(register, old).ok).toBe(true);
  });

  test('rejects a stale read after the write returned, and names what it could not place', () => {
    const history = [
      op<RegisterOp, number | null>({ kind: 'write', value: 1 }, null, 0, 10),
      op<RegisterOp, number | null>({ kind: 'read' }, 0, 11, 12),
    ];
    const verdict = checkLinearizable(register, history);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.stuck.map((o) => o.output)).toEqual([0]);
  });

  test('rejects a history no order explains, among many concurrent writes (a read of a value never written)', () => {
    const writes = Array.from({ length: 12 }, (_, i) => op<RegisterOp, number | null>({ kind: 'write', value: i + 1 }, null, i, 100));
    expect(checkLinearizable(register, [...writes, op<RegisterOp, number | null>({ kind: 'read' }, 12, 50, 60)]).ok).toBe(true);
    expect(checkLinearizable(register, [...writes, op<RegisterOp, number | null>({ kind: 'read' }, 13, 50, 60)]).ok).toBe(false);
  });
});

const sale = (input: SaleInput, output: SaleOutput, start: number, end: number): SaleOp => ({ input, output, start, end });

describe('the model of a sale', () => {
  const model = saleModel(1);

  test('sells the one ticket once, holds it for its buyer, and sells it again after a cancel', () => {
    const history = [
      sale({ kind: 'buy', user: 'a' }, { kind: 'sold', orderId: '1-0' }, 0, 1),
      sale({ kind: 'buy', user: 'b' }, { kind: 'soldout', exempt: false }, 2, 3),
      sale({ kind: 'buy', user: 'a' }, { kind: 'held', orderId: '1-0' }, 2, 3),
      sale({ kind: 'cancel', orderId: '1-0', user: 'a' }, { kind: 'state', state: 'cancelled' }, 4, 5),
      sale({ kind: 'buy', user: 'b' }, { kind: 'sold', orderId: '6-0' }, 6, 7),
    ];
    expect(checkLinearizable(model, history).ok).toBe(true);
  });

  test('catches a second sale of one ticket, "sold out" after a cancel, a paid order read as expired, and a lost order', () => {
    const bought = sale({ kind: 'buy', user: 'a' }, { kind: 'sold', orderId: '1-0' }, 0, 1);
    const twice = [bought, sale({ kind: 'buy', user: 'b' }, { kind: 'sold', orderId: '2-0' }, 2, 3)];
    const soldOutWhileFree = [
      bought,
      sale({ kind: 'cancel', orderId: '1-0', user: 'a' }, { kind: 'state', state: 'cancelled' }, 2, 3),
      sale({ kind: 'buy', user: 'b' }, { kind: 'soldout', exempt: false }, 4, 5),
    ];
    const paidThenExpired = [
      bought,
      sale({ kind: 'pay', orderId: '1-0', user: 'a' }, { kind: 'state', state: 'paid' }, 2, 3),
      sale({ kind: 'read', orderId: '1-0', user: 'a' }, { kind: 'state', state: 'expired' }, 4, 5),
    ];
    const lost = [bought, sale({ kind: 'read', orderId: '1-0', user: 'a' }, { kind: 'missing' }, 2, 3)];
    for (const history of [twice, soldOutWhileFree, paidThenExpired, lost]) expect(checkLinearizable(model, history).ok).toBe(false);
    // A "sold out" given while Redis was down is exempt from the strict rule.
    const exempt = [...soldOutWhileFree.slice(0, 2), sale({ kind: 'buy', user: 'b' }, { kind: 'soldout', exempt: true }, 4, 5)];
    expect(checkLinearizable(model, exempt).ok).toBe(true);
  });

  test('lets an unanswered purchase have happened or not, and binds its order when an answer names it', () => {
    const maybe = sale({ kind: 'buy', user: 'a' }, { kind: 'unknown' }, 0, 10);
    expect(checkLinearizable(model, [maybe, sale({ kind: 'buy', user: 'b' }, { kind: 'sold', orderId: '5-0' }, 11, 12)]).ok).toBe(true);
    expect(checkLinearizable(model, [maybe, sale({ kind: 'buy', user: 'a' }, { kind: 'held', orderId: '3-0' }, 11, 12)]).ok).toBe(true);
    const expired = [maybe, sale({ kind: 'expire', orders: [{ orderId: '3-0', user: 'a' }] }, { kind: 'done' }, 11, 12)];
    expect(checkLinearizable(model, expired).ok).toBe(true);
    // But not both: the one ticket cannot be b's and a's.
    const both = [
      maybe,
      sale({ kind: 'buy', user: 'b' }, { kind: 'sold', orderId: '5-0' }, 11, 12),
      sale({ kind: 'buy', user: 'a' }, { kind: 'held', orderId: '3-0' }, 13, 14),
    ];
    expect(checkLinearizable(model, both).ok).toBe(false);
  });

  test('flags an expiry before the deadline', () => {
    const history = [sale({ kind: 'expire', orders: [{ orderId: '1000-0', user: 'a' }] }, { kind: 'done' }, 1500, 1900)];
    expect(earlyExpiries(history, 1000)).toHaveLength(1);
    expect(earlyExpiries(history, 800)).toEqual([]);
  });
});
