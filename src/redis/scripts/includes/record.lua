-- A flat reply (name, value, name, value...: a stream entry's fields, an XINFO reply) as a table.
local function record(fields)
  local f = {}
  for i = 1, #fields, 2 do
    f[fields[i]] = fields[i + 1]
  end
  return f
end
