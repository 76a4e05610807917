module Greeter
  def self.greet(name)
    "Hello #{name}, from a vendored gem"
  end
end
