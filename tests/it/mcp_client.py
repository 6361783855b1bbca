"""An MCP client on the official Python SDK (PyPI `mcp`) that runs a list of steps against a
server and prints what each returned, as JSON, for tests/it/mcp.rs to check.

usage: mcp_client.py stdio COMMAND ARGS... < steps.json
       mcp_client.py http URL < steps.json

Steps: {"op": "list_tools"} | {"op": "call", "name": N, "args": {...}} | {"op": "list_resources"}
| {"op": "list_resource_templates"} | {"op": "read_resource", "uri": U}
| {"op": "list_prompts"} | {"op": "get_prompt", "name": N, "args": {...}}.
A step that raises is reported as {"exception": "..."}; the next step still runs.
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


def text_of(blocks):
    return "\n".join(getattr(b, "text", "") for b in blocks)


async def step(session, s):
    op = s["op"]
    if op == "list_tools":
        r = await session.list_tools()
        return {"tools": [{"name": t.name, "description": t.description, "schema": t.input_schema} for t in r.tools]}
    if op == "call":
        r = await session.call_tool(s["name"], s.get("args"))
        return {"is_error": bool(r.is_error), "structured": r.structured_content, "text": text_of(r.content)}
    if op == "list_resources":
        r = await session.list_resources()
        return {"resources": [{"uri": str(x.uri), "name": x.name, "title": x.title} for x in r.resources]}
    if op == "list_resource_templates":
        r = await session.list_resource_templates()
        return {"templates": [str(t.uri_template) for t in r.resource_templates]}
    if op == "read_resource":
        r = await session.read_resource(s["uri"])
        return {"contents": [getattr(c, "text", "") for c in r.contents]}
    if op == "list_prompts":
        r = await session.list_prompts()
        return {"prompts": [p.name for p in r.prompts]}
    if op == "get_prompt":
        r = await session.get_prompt(s["name"], s.get("args"))
        return {"messages": [getattr(m.content, "text", "") for m in r.messages]}
    raise ValueError(f"unknown step {op}")


async def run(streams, steps):
    read, write = streams[0], streams[1]
    out = []
    async with ClientSession(read, write) as session:
        init = await session.initialize()
        out.append({"server": init.server_info.name})
        for s in steps:
            try:
                out.append(await step(session, s))
            except Exception as e:  # reported, and the session goes on
                out.append({"exception": f"{type(e).__name__}: {e}"})
    return out


async def main():
    steps = json.load(sys.stdin)
    if sys.argv[1] == "stdio":
        params = StdioServerParameters(command=sys.argv[2], args=sys.argv[3:], env={"RUST_BACKTRACE": "1"})
        async with stdio_client(params) as streams:
            out = await run(streams, steps)
    else:
        async with streamable_http_client(sys.argv[2]) as streams:
            out = await run(streams, steps)
    json.dump(out, sys.stdout)


asyncio.run(main())
