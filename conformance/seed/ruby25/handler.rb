require 'json'

def endpoint(event:, context:)
  { statusCode: 200, body: JSON.generate({ date: Time.new }) }
end
