"""The engine: operations, every routing form, pauses and resumes, sub-flows, guards."""

from pathlib import Path

import pytest

from greentic.errors import FlowError
from greentic.flow import (
    FlowEngine,
    FlowSnapshot,
    NodeError,
    NodeOutcome,
    PreparedFlow,
    TurnResult,
    load_flow,
)
from greentic.runner.operations import state_operations
from greentic.state import MemoryStateStore, StateKey
from greentic.types import Button, Envelope, TenantCtx
from tests.reference import REFERENCE_FLOWS

EXAMPLES = Path(__file__).parents[2] / "examples"
CTX = TenantCtx("dev", "t", "m")


def inbound(text: str, value: object = None, conversation: str = "c1") -> Envelope:
    return Envelope(id="m1", ctx=CTX, channel="webchat", provider="webchat",
                    conversation=conversation, sender="u1", text=text, value=value)


class Conversation:
    """Runs turns of one flow like the executor does, keeping the snapshot between them."""

    def __init__(self, *sources: str, engine: FlowEngine | None = None) -> None:
        self.engine = engine or FlowEngine()
        self.flows: dict[str, PreparedFlow] = {}
        for source in sources:
            prepared = self.engine.prepare(load_flow(source, "f.ygtc"), "p")
            self.flows.setdefault("__main__", prepared)
            self.flows[prepared.flow.id] = prepared
        self.snapshot: FlowSnapshot | None = None

    async def say(self, text: str, value: object = None) -> TurnResult:
        result = await self.engine.run_turn(self.flows["__main__"], inbound(text, value),
                                            self.snapshot, self.flows.get)
        self.snapshot = result.paused
        return result

    async def texts(self, text: str) -> list[str]:
        return [r.text for r in (await self.say(text)).replies]


async def run(source: str, text: str = "hi") -> TurnResult:
    return await Conversation(source).say(text)


async def test_a_handlebars_node_with_reply_routing_answers_with_its_text_and_buttons() -> None:
    result = await run("""
id: f
nodes:
  a:
    templating.handlebars: {text: "You said {{in.input.text}} ({{input.sender}})", buttons: [A]}
    routing: reply
""", "it's <b>")
    assert [r.text for r in result.replies] == ["You said it's <b> (u1)"]  # no HTML escaping
    assert result.replies[0].buttons == [Button("A", "A")]


async def test_routes_follow_node_ids_and_a_messaging_flow_answers_with_its_last_output() -> None:
    result = await run("""
id: f
type: messaging
start: first
nodes:
  first:
    templating.handlebars: {text: "one"}
    routing: [{next: second}]
  second:
    templating.handlebars: {text: "{{prev.text}} two {{node.first.text}}"}
    routing: [{out: true}]
""")
    assert result.steps == ["first", "second"]
    assert [r.text for r in result.replies] == ["one two one"]


async def test_a_job_flow_that_ends_sends_nothing() -> None:
    result = await run("id: f\ntype: job\nnodes:\n  a:\n    templating.handlebars: {text: x}\n")
    assert result.replies == []


BRANCHES = """
id: f
nodes:
  classify:
    templating.handlebars: {text: "{{input.text}}"}
    routing:
      - {to: big, condition: "input.number > 100 && !(input.normalized == 'ignore')"}
      - {to: word, condition: "'help' in input.normalized"}
      - {to: other}
  big: {templating.handlebars: {text: big}, routing: reply}
  word: {templating.handlebars: {text: word}, routing: reply}
  other: {templating.handlebars: {text: other}, routing: reply}
"""


@pytest.mark.parametrize(("text", "branch"), [
    ("500", "big"), ("5", "other"), ("Please HELP me", "word"), ("", "other"), ("1e9", "big"),
])
async def test_conditions_pick_the_first_matching_route(text: str, branch: str) -> None:
    assert [r.text for r in (await run(BRANCHES, text)).replies] == [branch]


async def test_status_routes_branch_on_the_previous_nodes_status_with_a_default() -> None:
    async def check(_node, rendered, _turn) -> NodeOutcome:
        return NodeOutcome({"n": rendered["n"]}, status="high" if int(rendered["n"]) > 5
                           else "low")

    source = """
id: f
nodes:
  check:
    check.number: {n: "{{input.text}}"}
    routing: [{status: high, to: high}, {status: low, reply: true}, {to: high}]
  high: {templating.handlebars: {text: "high {{prev.n}}"}, routing: reply}
"""
    conversation = Conversation(source, engine=FlowEngine(operations={"check.number": check}))
    assert await conversation.texts("9") == ["high 9"]
    assert (await conversation.say("1")).replies == []  # reply: true with a non-text output


async def test_session_wait_pauses_and_the_next_message_resumes_with_its_own_input() -> None:
    conversation = Conversation("""
id: f
nodes:
  ask:
    session.wait: {text: "Name?"}
    routing: [{to: greet}]
  greet:
    templating.handlebars: {text: "Hello {{input.text}}"}
    routing: reply
""")
    first = await conversation.say("hi")
    assert [r.text for r in first.replies] == ["Name?"]
    assert first.paused == FlowSnapshot(pack="p", flow="f", version=first.paused.version,
                                        node="ask", state={})
    assert await conversation.texts("Ada") == ["Hello Ada"]
    assert conversation.snapshot is None


async def test_flow_state_survives_the_pause_in_the_snapshot() -> None:
    conversation = Conversation("""
id: f
nodes:
  keep: {state.set: {first: "{{input.text}}"}, routing: [{to: ask}]}
  ask: {session.wait: {text: "and?"}, routing: [{to: both}]}
  both: {templating.handlebars: {text: "{{state.first}} + {{input.text}}"}, routing: reply}
""", engine=FlowEngine(operations=state_operations(MemoryStateStore())))
    assert await conversation.texts("one") == ["and?"]
    assert conversation.snapshot.state == {"first": "one"}
    assert await conversation.texts("two") == ["one + two"]


async def test_on_message_routes_only_when_resuming_with_typed_text() -> None:
    source = """
id: f
nodes:
  card:
    session.wait: {text: "Pick", buttons: [A]}
    routing: [{on_message: true, to: typed}, {to: clicked}]
  typed: {templating.handlebars: {text: typed}, routing: reply}
  clicked: {templating.handlebars: {text: clicked}, routing: reply}
"""
    typed = Conversation(source)
    await typed.say("hi")
    assert await typed.texts("free text") == ["typed"]
    clicked = Conversation(source)
    await clicked.say("hi")
    assert [r.text for r in (await clicked.say("A", value="A")).replies] == ["clicked"]


async def test_questions_ask_one_per_turn_validate_and_expose_the_answers() -> None:
    conversation = Conversation("""
id: f
nodes:
  form:
    questions:
      welcome: Welcome!
      questions:
        - {id: age, prompt: "Age?", answer_type: integer}
        - {id: ok, prompt: "Sure?", answer_type: boolean}
        - {id: size, prompt: "Size?", answer_type: choice, options: [S, M]}
    routing: [{to: done}]
  done:
    templating.handlebars: {text: "{{input.age}} {{input.ok}} {{state.answers.size}}"}
    routing: reply
""")
    assert await conversation.texts("start") == ["Welcome!\nAge?"]
    assert await conversation.texts("old") == ["Please answer with a whole number.\nAge?"]
    assert await conversation.texts("41") == ["Sure?"]
    assert await conversation.texts("yes") == ["Size?"]
    result = await conversation.say("xl")
    assert result.replies[0].text == "Please choose one of: S, M.\nSize?"
    assert [b.title for b in result.replies[0].buttons] == ["S", "M"]
    assert await conversation.texts("m") == ["41 true M"]


async def test_emit_response_sends_several_replies_in_one_turn() -> None:
    result = await run("""
id: f
nodes:
  a: {emit.response: {text: one}, routing: [{to: b}]}
  b: {emit.response: {text: two, buttons: [{title: Yes, value: y}]}, routing: out}
""")
    assert [(r.text, r.buttons) for r in result.replies] == [
        ("one", []), ("two", [Button("Yes", "y")])]


async def test_flow_call_runs_a_sub_flow_and_goto_continues_in_another() -> None:
    conversation = Conversation("""
id: main
nodes:
  call: {flow.call: {flow: helper, input: {text: "from main"}}, routing: [{to: after}]}
  after: {templating.handlebars: {text: "main got {{prev.text}}"}, routing: [{to: jump}]}
  jump: {flow.goto: {flow: other}}
""", """
id: helper
nodes:
  h: {templating.handlebars: {text: "helper saw {{input.text}}"}}
""", """
id: other
nodes:
  o: {emit.response: {text: "in other"}, routing: [{to: wait}]}
  wait: {session.wait: {text: "other waits"}, routing: [{to: fin}]}
  fin: {templating.handlebars: {text: "other done"}, routing: reply}
""")
    result = await conversation.say("x")
    assert result.steps == ["call", "helper/h", "after", "jump", "o", "wait"]
    assert [r.text for r in result.replies] == ["in other", "other waits"]
    assert conversation.snapshot.flow == "other"
    assert await conversation.texts("y") == ["other done"]


async def test_flow_call_to_a_missing_flow_routes_as_an_error() -> None:
    result = await run("""
id: f
nodes:
  call: {flow.call: {flow: nowhere}, routing: [{status: error, to: sorry}, {to: fine}]}
  sorry: {templating.handlebars: {text: "sorry: {{prev.error.message}}"}, routing: reply}
  fine: {templating.handlebars: {text: fine}, routing: reply}
""")
    assert [r.text for r in result.replies] == ["sorry: flow 'nowhere' is not available in "
                                                "this pack"]


async def test_retryable_errors_are_retried_with_backoff_then_route_as_errors() -> None:
    calls: list[str] = []

    async def flaky(_node, _rendered, _turn) -> NodeOutcome:
        calls.append("call")
        if len(calls) < 3:
            raise NodeError("busy", "try later", retryable=True, backoff_ms=1)
        return NodeOutcome({"text": f"ok after {len(calls)}"})

    async def broken(_node, _rendered, _turn) -> NodeOutcome:
        calls.append("broken")
        raise NodeError("bad", "never works", retryable=False)

    engine = FlowEngine(operations={"x.flaky": flaky, "x.broken": broken})
    ok = Conversation("id: f\nnodes:\n  a: {x.flaky: {}, retry: {max_attempts: 3, "
                      "backoff_ms: 1}, routing: reply}\n", engine=engine)
    assert await ok.texts("go") == ["ok after 3"]
    calls.clear()
    failing = Conversation("id: f\nnodes:\n  a: {x.broken: {}, retry: {max_attempts: 3}}\n",
                           engine=engine)
    with pytest.raises(FlowError, match=r"never works \(no route for status 'error'\)"):
        await failing.say("go")
    assert calls == ["broken"], "non-retryable errors are not retried"


async def test_a_slow_operation_times_out_per_node() -> None:
    import asyncio

    async def slow(_node, _rendered, _turn) -> NodeOutcome:
        await asyncio.sleep(5)
        return NodeOutcome({})

    conversation = Conversation("""
id: f
nodes:
  a: {x.slow: {}, timeout: {ms: 50}, routing: [{status: error, to: late}]}
  late: {templating.handlebars: {text: "{{prev.error.code}}: {{prev.error.message}}"}}
""", engine=FlowEngine(operations={"x.slow": slow}))
    assert await conversation.texts("go") == ["timeout: timeout after 50 ms"]


async def test_a_loop_is_stopped_by_the_step_guard() -> None:
    with pytest.raises(FlowError, match="more than 100 steps"):
        await run("id: f\nnodes:\n  a:\n    templating.handlebars: {text: x}\n    routing: a\n")


async def test_an_unsupported_operation_is_a_flow_error_naming_the_node() -> None:
    with pytest.raises(FlowError, match=r"f\.ygtc:node 'a': operation 'x\.y' is not supported"):
        await run("id: f\nnodes:\n  a:\n    x.y: {}\n")


async def test_scoped_state_is_kept_per_tenant_and_owner() -> None:
    store = MemoryStateStore()
    engine = FlowEngine(operations=state_operations(store))
    source = """
id: f
nodes:
  read: {state.get: {key: visits, scope: user, default: 0}, routing: [{to: write}]}
  write:
    state.set: {scope: user, values: {visits: "{{prev.value}}+1"}}
    routing: [{to: say}]
  say: {templating.handlebars: {text: "{{node.read.value}}"}, routing: reply}
"""
    conversation = Conversation(source, engine=engine)
    assert await conversation.texts("a") == ["0"]
    assert await conversation.texts("b") == ["0+1"]
    key = StateKey(CTX, "user", "webchat-u1", "visits")
    assert await store.get(key) == b'"0+1+1"'
    assert await store.get(key._replace(ctx=TenantCtx("dev", "other", "m"))) is None


async def test_greentics_own_hello_flow_answers() -> None:
    result = await run((REFERENCE_FLOWS / "hello.ygtc").read_text())
    assert [r.text for r in result.replies] == ["Hello from greentic-flow!"]


async def test_the_demo_pack_holds_a_menu_a_faq_sub_flow_and_a_multi_turn_form() -> None:
    flows = EXAMPLES / "demo" / "pack" / "flows"
    conversation = Conversation(*(p.read_text() for p in [flows / "main.ygtc",
                                                          flows / "faq.ygtc",
                                                          flows / "signup.ygtc"]),
                                engine=FlowEngine(operations=state_operations(
                                    MemoryStateStore())))
    assert (await conversation.texts("hi"))[0].startswith("Hi! I am the Greentic demo bot")
    await conversation.say("Ask a question")
    assert (await conversation.texts("how much does it cost?"))[0].startswith("The demo plan")
    assert await conversation.texts("Sign up") == ["Let's sign you up. What is your name?"]
    assert await conversation.texts("Ada") == ["Nice to meet you, Ada. How old are you?"]
    assert await conversation.texts("very") == ["Please give your age as a number, e.g. 42."]
    assert await conversation.texts("36") == ["Which plan would you like?"]
    assert await conversation.texts("Team") == [
        "Ada, 36 years, plan Team. Shall I register you?"]
    assert await conversation.texts("Yes") == [
        "Done! Welcome aboard, Ada. Say anything to start again."]
    assert conversation.snapshot is None


async def test_a_flow_without_nodes_ends_at_once_without_a_reply() -> None:
    result = await run("id: empty\ntype: messaging\nnodes: {}\n")
    assert result.replies == [] and result.steps == [] and result.paused is None
