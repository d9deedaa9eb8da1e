// The real @chatbotkit/sdk against a Tertulia server: BASE_URL and TOKEN come from the
// test (test_node_sdk.py), which asserts on the JSON this prints. Retries are off so that a
// refused call is seen once.
import { ChatBotKit } from '@chatbotkit/sdk'
import { refusal } from './refusal.mjs'

const baseUrl = process.env.BASE_URL
const secret = process.env.TOKEN
const options = { baseUrl, retries: 0, timeout: 120000 }
const cbk = new ChatBotKit({ ...options, secret })
const out = {}

// A bot, a dataset with records, the bot answering from them.
const bot = await cbk.bot.create({
  name: 'Node helper',
  backstory: 'You are a helpful assistant. Answer in one short sentence.',
  model: 'qwen2.5-coder-0.5b-instruct/temperature=0', // greedy: the same answer every run
})
out.bot = await cbk.bot.fetch(bot.id)
const dataset = await cbk.dataset.create({ name: 'node kb' })
await cbk.dataset.record.create(dataset.id, { text: 'The Tertulia lighthouse is lit at 21:40 every night.', source: 'faq' })
await cbk.dataset.record.create(dataset.id, { text: 'The harbour office is closed on Sundays.' })
out.records = await cbk.dataset.record.list(dataset.id)
out.search = await cbk.dataset.search(dataset.id, 'When is the lighthouse lit?')
await cbk.bot.update(bot.id, { datasetId: dataset.id })

// A conversation: complete in JSON, then streamed as JSONL.
const conversation = await cbk.conversation.create({ botId: bot.id })
out.answer = await cbk.conversation.complete(conversation.id, { text: 'At what time is the Tertulia lighthouse lit?' })
out.stream = []
for await (const item of cbk.conversation.complete(conversation.id, { text: 'Say hello.' }).stream()) {
  out.stream.push(item)
}
out.messages = await cbk.conversation.message.list(conversation.id)
out.stateless = await cbk.conversation.complete(null, { botId: bot.id, messages: [{ type: 'user', text: 'When is the Tertulia lighthouse lit?' }] })

// A file uploaded the SDK's way (a signed URL it PUTs the bytes to), attached to a dataset.
const file = await cbk.file.create({ name: 'ferry.txt' })
out.upload = await cbk.file.upload(file.id, {
  data: 'The Tertulia ferry to Isla Verde leaves at 07:15 from pier nine.',
  type: 'text/plain',
  name: 'ferry.txt',
})
const downloaded = await cbk.file.download(file.id)
out.downloaded = typeof downloaded === 'string' ? downloaded : new TextDecoder().decode(downloaded.data ?? downloaded)
await cbk.dataset.file.attach(dataset.id, file.id, { type: 'source' })
out.datasetFiles = (await cbk.dataset.file.list(dataset.id)).items.map((item) => item.id)
out.fileSearch = await cbk.dataset.search(dataset.id, 'When does the ferry leave?')
out.file = file.id

// A skillset with an ability, given to the bot.
const skillset = await cbk.skillset.create({ name: 'Support' })
await cbk.skillset.ability.create(skillset.id, { name: 'Search', description: 'search', instruction: 'search it' })
out.abilities = (await cbk.skillset.ability.list(skillset.id)).items.map((item) => item.name)
await cbk.bot.update(bot.id, { skillsetId: skillset.id })
out.botSkillset = (await cbk.bot.fetch(bot.id)).skillsetId
out.skillset = skillset.id

// A session for one conversation: it completes there, and nowhere else.
const session = await cbk.conversation.session.create(conversation.id, { durationInSeconds: 1800 })
const visitor = new ChatBotKit({ ...options, secret: session.token })
out.sessionAnswer = await visitor.conversation.complete(conversation.id, { text: 'Say hi.' })
out.sessionRefusal = await refusal(() => visitor.conversation.fetch(conversation.id))
const botSession = await cbk.bot.session.create(bot.id, { contact: { name: 'Ana', email: 'ana@example.com' } })
out.botSession = { id: botSession.id, conversationId: botSession.conversationId }
out.botSessionSend = await new ChatBotKit({ ...options, secret: botSession.token }).conversation.send(
  botSession.conversationId,
  { text: 'Hello' },
)

// Cursor pages of conversations, two at a time.
for (let n = 0; n < 3; n++) await cbk.conversation.create({ botId: bot.id })
out.pages = []
let cursor
for (;;) {
  const page = await cbk.conversation.list({ take: 2, ...(cursor ? { cursor } : {}) })
  if (!page.items.length) break
  out.pages.push(page.items.map((item) => item.id))
  cursor = page.cursor
}

// A token limited to bots, refused elsewhere.
const made = await fetch(new URL('/api/v1/token/create', baseUrl), {
  method: 'POST',
  headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
  body: JSON.stringify({ name: 'bots only', config: { allowedRoutes: ['bot/**'] } }),
}).then((response) => response.json())
const limited = new ChatBotKit({ ...options, secret: made.token })
out.limitedBots = (await limited.bot.list()).items.map((item) => item.id)
out.limitedRefusal = await refusal(() => limited.conversation.list())

// A partner acting as its sub-account.
const child = await cbk.partner.user.create({ name: 'Shop', email: 'node-shop@example.com' })
const asChild = new ChatBotKit({ ...options, secret, runAsUserId: child.id })
const childBot = await asChild.bot.create({ name: 'Shop bot' })
out.childBots = (await asChild.bot.list()).items.map((item) => item.id)
out.childBot = childBot.id
out.parentBots = (await cbk.bot.list()).items.map((item) => item.id)
out.strangerRefusal = await refusal(() => new ChatBotKit({ ...options, secret, runAsUserId: 'usr_nobody' }).bot.list())
out.missing = await refusal(() => cbk.bot.fetch('bot_missing'))

process.stdout.write(JSON.stringify(out))
