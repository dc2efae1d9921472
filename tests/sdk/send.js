// Sends a plan of events to a Segment-compatible host with the official
// Node.js library (@segment/analytics-node), then prints a JSON summary.
//
// usage: node send.js PLAN.json HOST WRITE_KEY
'use strict'
const fs = require('fs')
const { Analytics } = require('@segment/analytics-node')

async function main() {
  const [planPath, host, writeKey] = process.argv.slice(2)
  const plan = JSON.parse(fs.readFileSync(planPath, 'utf8'))
  const analytics = new Analytics({ writeKey, host, flushAt: 100, flushInterval: 200, maxRetries: 20 })
  const errors = []
  analytics.on('error', (err) => errors.push(String(err && (err.reason || err.message || err.code) || err)))
  for (const item of plan) {
    const common = { anonymousId: item.anonymousId, timestamp: new Date(item.timestamp), messageId: item.messageId }
    if (item.type === 'track') {
      analytics.track({ ...common, event: item.event, properties: item.properties || {} })
    } else if (item.type === 'page') {
      analytics.page({ ...common, name: item.name, properties: item.properties || {} })
    } else if (item.type === 'identify') {
      analytics.identify({ ...common, userId: item.userId, traits: item.traits || {} })
    } else {
      throw new Error('unknown type in plan: ' + item.type)
    }
  }
  await analytics.closeAndFlush({ timeout: 120000 })
  console.log(JSON.stringify({ sent: plan.length, errors }))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
