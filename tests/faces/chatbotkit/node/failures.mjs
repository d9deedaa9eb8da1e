// The real @chatbotkit/sdk meeting Tertulia's errors (test_node_sdk.py): a model provider that
// fails (the test's stand-in answers HTTP 500) and an account out of tokens. BASE_URL and
// TOKEN come from the test, which asserts on the JSON this prints. Retries are off.
import { ChatBotKit } from '@chatbotkit/sdk'
import { refusal } from './refusal.mjs'

const cbk = new ChatBotKit({ baseUrl: process.env.BASE_URL, secret: process.env.TOKEN, retries: 0 })
const out = {}

const bot = await cbk.bot.create({ name: 'Remote', model: 'gpt-4o' })
const request = { botId: bot.id, messages: [{ type: 'user', text: 'Hi' }] }
out.refusal = await refusal(() => cbk.conversation.complete(null, request))
out.stream = []
for await (const item of cbk.conversation.complete(null, request).stream()) out.stream.push(item)
console.log(JSON.stringify(out))
