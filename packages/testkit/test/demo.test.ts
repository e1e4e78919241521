/**
 * The demo, in-process: every scenario ends as expected and each ladder shows the steps
 * that make the story (push, call UI, REGISTER, INVITE, answer/CANCEL, end reason).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderLadder } from '../src/demo/ladder.js';
import { runDemo } from '../src/demo/run.js';

describe('demo', () => {
  it('runs every scenario to the expected end, with readable ladders', async () => {
    let text = '';
    const result = await runDemo({ output: { write: (s: string) => (text += s) } });
    assert.equal(result.passed, true, text);
    assert.ok(result.durationMs < 30_000, `took ${result.durationMs} ms`);
    const byId = new Map(result.scenarios.map((s) => [s.id, s]));
    assert.deepEqual([...byId.keys()], ['ios-answer', 'android-answer', 'cancel-before-wake', 'answered-elsewhere', 'declined-elsewhere']);
    for (const s of result.scenarios) {
      assert.equal(s.kills, 0, s.id);
      assert.equal(s.voipPushes, 1, s.id);
      assert.deepEqual(s.problems, [], s.id);
    }
    const ladder = (id: string) => byId.get(id)!.ladder.join('\n');

    const ios = ladder('ios-answer');
    for (const step of ['INVITE', 'push (voip, prio 10)', 'reported to CallKit', 'REGISTER', 'INVITE delivered', 'user taps Answer', '200 OK', 'ended: remoteEnded']) {
      assert.ok(ios.includes(step), `iPhone ladder shows "${step}":\n${ios}`);
    }
    // Rows are in time order, and the push precedes the REGISTER which precedes the answer.
    const at = (needle: string) => ios.split('\n').findIndex((l) => l.includes(needle));
    assert.ok(at('push (voip') < at('reported to CallKit'));
    assert.ok(at('reported to CallKit') < at('REGISTER'));
    assert.ok(at('REGISTER') < at('INVITE delivered'));
    assert.ok(at('INVITE delivered') < at('user taps Answer'));
    const offsets = ios.split('\n').slice(1).map((l) => Number(/\+(\d+) ms/.exec(l)?.[1]));
    assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), 'time never goes backwards');

    assert.match(ladder('android-answer'), /FCM data \(high\)/);
    assert.match(ladder('android-answer'), /ConnectionService/);
    const cancel = ladder('cancel-before-wake');
    assert.match(cancel, /CANCEL/);
    assert.match(cancel, /487 Request Termin/);
    assert.match(cancel, /ended: remoteEnded/);
    assert.ok(cancel.indexOf('CANCEL') < cancel.indexOf('REGISTER'), 'the caller cancelled before the phone woke');
    assert.match(ladder('answered-elsewhere'), /CANCEL \(cause=200\)/);
    assert.match(ladder('answered-elsewhere'), /ended: answeredElsewhere/);
    assert.match(ladder('declined-elsewhere'), /CANCEL \(cause=603\)/);
    assert.match(ladder('declined-elsewhere'), /ended: declinedElsewhere/);

    // The printed output has the summary table.
    assert.match(text, /ios-answer\s+200\s+200\s+remoteEnded\s+remoteEnded\s+1\s+0\s+PASS/);
    assert.match(text, /all calls ended as expected/);
  });

  it('renders arrows in both directions and notes on a lifeline', () => {
    const lines = renderLadder(
      [
        { at: 1000, rank: 0, kind: 'arrow', from: 'caller', to: 'pushcall', label: 'INVITE' },
        { at: 1003, rank: 0, kind: 'arrow', from: 'phone', to: 'pushcall', label: 'REGISTER' },
        { at: 1003, rank: 1, kind: 'note', lane: 'phone', label: 'ringing' },
      ],
      { t0: 1000 },
    );
    assert.match(lines[0], /caller\s+pushcall\s+phone/);
    assert.match(lines[1], /^\s+\+0 ms\s+│─+ INVITE ─+▶│/);
    assert.match(lines[2], /^\s+\+3 ms\s+│\s+│◀─+ REGISTER ─+│/);
    assert.match(lines[3], /●\s+phone: ringing$/);
  });
});
