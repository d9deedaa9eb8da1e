// What a refused SDK call threw, as the tests compare it: its name and ChatBotKit code.
// null when the call was not refused.
export async function refusal(call) {
  try {
    await call()
    return null
  } catch (error) {
    return { name: error.name, code: error.code }
  }
}
