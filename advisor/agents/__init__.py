"""The agent doors: one tool contract (`tools`), served over MCP (`mcp_server`) and exported as
JSON Schema and OpenAI strict function definitions (`schemas`)."""
