Gem::Specification.new do |s|
  s.name = "greeter"
  s.version = "1.0.0"
  s.summary = "A gem vendored with the function"
  s.authors = ["KLR"]
  s.files = ["lib/greeter.rb"]
  s.require_paths = ["lib"]
end
