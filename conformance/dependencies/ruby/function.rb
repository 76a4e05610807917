require 'greeter'

def handler(event:, context:)
  { greeting: Greeter.greet(event['name']) }
end
