// Command argocd-health runs an Argo CD resource health script the way
// Argo CD does (gopher-lua, the Lua VM Argo CD embeds; the object as the
// global `obj`, converted like Argo CD's util/lua decodeValue) over one
// object read as JSON from stdin, and prints "<status> <message>".
//
// Usage: argocd-health <health.yaml> <data key>  < object.json
package main

import (
	"encoding/json"
	"fmt"
	"os"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 3 {
		fail("usage: argocd-health <health.yaml> <data key> < object.json")
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err.Error())
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		fail("parse " + os.Args[1] + ": " + err.Error())
	}
	script, ok := cm.Data[os.Args[2]]
	if !ok {
		fail("no data key " + os.Args[2])
	}
	var obj map[string]interface{}
	if err := json.NewDecoder(os.Stdin).Decode(&obj); err != nil {
		fail("read object: " + err.Error())
	}
	// Argo CD opens only these libraries for health scripts.
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	l.SetGlobal("obj", decode(l, obj))
	if err := l.DoString(script); err != nil {
		fail("script: " + err.Error())
	}
	hs, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		fail("the script returned no table")
	}
	status := lua.LVAsString(hs.RawGetString("status"))
	message := lua.LVAsString(hs.RawGetString("message"))
	fmt.Printf("%s %s\n", status, message)
}

// decode converts a JSON value to Lua as Argo CD's util/lua does: objects
// and arrays become tables (arrays 1-indexed), numbers LNumber, null nil.
func decode(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case map[string]interface{}:
		t := l.NewTable()
		for k, item := range v {
			t.RawSetString(k, decode(l, item))
		}
		return t
	case []interface{}:
		t := l.NewTable()
		for i, item := range v {
			t.RawSetInt(i+1, decode(l, item))
		}
		return t
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case bool:
		return lua.LBool(v)
	default:
		return lua.LNil
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "argocd-health: "+msg)
	os.Exit(2)
}
